//! A Lambda Runtime API emulator: runs a built function binary as Lambda does
//! (the `AWS_LAMBDA_*` environment, `GET /runtime/invocation/next` long
//! polls, `POST .../response` and `.../error`), so tests and the demo drive
//! the real binary and its real runtime loop. The process and the server stop
//! when the `Function` is dropped.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// The outcome of one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The handler's response.
    Response(serde_json::Value),
    /// The error document the runtime posted (`errorType`, `errorMessage`).
    Error(serde_json::Value),
}

impl Outcome {
    pub fn response(self) -> serde_json::Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!("the function failed: {e}"),
        }
    }

    pub fn error(self) -> serde_json::Value {
        match self {
            Outcome::Error(e) => e,
            Outcome::Response(v) => panic!("the function succeeded but should have failed: {v}"),
        }
    }
}

struct Pending {
    request_id: String,
    payload: String,
}

#[derive(Clone)]
struct ServerState {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_error: Arc<Mutex<Option<String>>>,
    first_poll: Arc<Mutex<Option<std::time::Instant>>>,
    function_arn: String,
}

/// A function process under the emulator.
pub struct Function {
    sender: mpsc::Sender<Pending>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_error: Arc<Mutex<Option<String>>>,
    output: Arc<Mutex<Vec<String>>>,
    first_poll: Arc<Mutex<Option<std::time::Instant>>>,
    started: std::time::Instant,
    child: Child,
    server: tokio::task::JoinHandle<()>,
    pub name: String,
    /// The emulator the function talks to (`AWS_ENDPOINT_URL`), for the profile.
    endpoint: Option<String>,
}

impl Function {
    /// Starts `binary` as function `name` with the extra environment `env`.
    pub async fn start(
        binary: &Path,
        name: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Function> {
        let (sender, receiver) = mpsc::channel::<Pending>(16);
        let waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>> = Arc::default();
        let init_error: Arc<Mutex<Option<String>>> = Arc::default();
        let first_poll: Arc<Mutex<Option<std::time::Instant>>> = Arc::default();
        let state = ServerState {
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            waiting: waiting.clone(),
            init_error: init_error.clone(),
            first_poll: first_poll.clone(),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_failed))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/22/[$LATEST]0123456789abcdef",
            )
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("_HANDLER", "bootstrap")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = std::time::Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
        let output: Arc<Mutex<Vec<String>>> = Arc::default();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            let echo = std::env::var("STEWARD_ECHO_LOGS").is_ok();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if echo {
                        eprintln!("{line}");
                    }
                    output.lock().expect("log lock").push(line);
                }
            });
        }
        Ok(Function {
            sender,
            waiting,
            init_error,
            output,
            first_poll,
            started,
            child,
            server,
            name: name.to_string(),
            endpoint: env
                .iter()
                .find(|(k, _)| k == "AWS_ENDPOINT_URL")
                .map(|(_, v)| v.clone()),
        })
    }

    /// Sends one event and waits for the function's answer (at most 120 s).
    pub async fn invoke(&mut self, payload: &serde_json::Value) -> anyhow::Result<Outcome> {
        self.invoke_raw(&payload.to_string()).await
    }

    /// Sends one event and returns the handler's response; panics (failing
    /// the test) when the invocation could not run or the function failed.
    pub async fn response_to(&mut self, payload: &serde_json::Value) -> serde_json::Value {
        self.invoke(payload)
            .await
            .unwrap_or_else(|e| panic!("{} could not be invoked: {e:#}", self.name))
            .response()
    }

    /// Sends one event that must fail and returns the error document the
    /// runtime posted; panics when the function succeeded instead.
    pub async fn error_for(&mut self, payload: &serde_json::Value) -> serde_json::Value {
        self.invoke(payload)
            .await
            .unwrap_or_else(|e| panic!("{} could not be invoked: {e:#}", self.name))
            .error()
    }

    /// Sends raw bytes (for malformed JSON) and waits for the answer; with
    /// `STEWARD_PROFILE_LOG` set, records its figures (see [`crate::profile`]).
    pub async fn invoke_raw(&mut self, payload: &str) -> anyhow::Result<Outcome> {
        let probe = crate::profile::Probe::before(self.endpoint.as_deref()).await;
        let outcome = self.invoke_once(payload).await;
        if let Some(probe) = probe {
            let ok = matches!(outcome, Ok(Outcome::Response(_)));
            probe.after(&self.name, self.pid(), ok).await;
        }
        outcome
    }

    /// The function's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn invoke_once(&mut self, payload: &str) -> anyhow::Result<Outcome> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("lock")
            .insert(request_id.clone(), tx);
        self.sender
            .send(Pending {
                request_id: request_id.clone(),
                payload: payload.to_string(),
            })
            .await
            .map_err(|_| anyhow::anyhow!("the emulator stopped"))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut rx = rx;
        loop {
            tokio::select! {
                outcome = &mut rx => return outcome.map_err(|_| anyhow::anyhow!("invocation dropped")),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if let Some(e) = self.init_error.lock().expect("lock").clone() {
                        anyhow::bail!("{} failed to start: {e}\n{}", self.name, self.logs().join("\n"));
                    }
                    if let Ok(Some(status)) = self.child.try_wait() {
                        anyhow::bail!("{} exited ({status}) during invocation {request_id}\n{}", self.name, self.logs().join("\n"));
                    }
                    if tokio::time::Instant::now() > deadline {
                        anyhow::bail!("{} did not answer within 120 s", self.name);
                    }
                }
            }
        }
    }

    /// Time from process start to its first `GET /runtime/invocation/next`
    /// (the cold start: runtime, clients, STS and policy), waiting at most `limit`.
    pub async fn cold_start(&self, limit: Duration) -> anyhow::Result<Duration> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = *self.first_poll.lock().expect("lock") {
                return Ok(at.duration_since(self.started));
            }
            if let Some(e) = self.init_error.lock().expect("lock").clone() {
                anyhow::bail!("{} failed to start: {e}", self.name);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("{} did not poll for work within {limit:?}", self.name);
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// True when every line the process wrote is a JSON document (logs and metrics).
    pub fn logs_are_json(&self) -> bool {
        self.logs()
            .iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    }

    /// Every line the process wrote so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.output.lock().expect("log lock").clone()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        self.server.abort();
    }
}

async fn next(State(state): State<ServerState>) -> impl IntoResponse {
    state
        .first_poll
        .lock()
        .expect("lock")
        .get_or_insert_with(std::time::Instant::now);
    let pending = state.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    let set = |h: &mut HeaderMap, k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).expect("header value"));
    };
    set(
        &mut headers,
        "lambda-runtime-aws-request-id",
        pending.request_id.clone(),
    );
    set(
        &mut headers,
        "lambda-runtime-deadline-ms",
        deadline.to_string(),
    );
    set(
        &mut headers,
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set(
        &mut headers,
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:x}-{}",
            chrono::Utc::now().timestamp(),
            &pending.request_id.replace('-', "")[..24]
        ),
    );
    set(&mut headers, "content-type", "application/json".into());
    (StatusCode::OK, headers, pending.payload)
}

fn complete(state: &ServerState, id: &str, outcome: Outcome) -> StatusCode {
    match state.waiting.lock().expect("lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(
    State(state): State<ServerState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    complete(&state, &id, Outcome::Response(json_or_text(&body)))
}

async fn fail(
    State(state): State<ServerState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    complete(&state, &id, Outcome::Error(json_or_text(&body)))
}

async fn init_failed(State(state): State<ServerState>, body: Bytes) -> StatusCode {
    *state.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
