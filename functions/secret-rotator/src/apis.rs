//! The adapters one rotation step needs, behind one port so in-process
//! tests substitute fakes: Secrets Manager in the secret's account and
//! region (through the member role for other accounts), and the database.

use std::sync::Arc;

use crate::database::{Database, Postgres};
use crate::secrets::{AwsSecrets, SecretsApi};

/// Builds the adapters (Secrets Manager per account and region; the database).
#[async_trait::async_trait]
pub(crate) trait Apis: Send + Sync {
    async fn secrets(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn SecretsApi>>;
    fn database(&self) -> Arc<dyn Database>;
}

/// The real adapters: the SDK through the shared AWS context, and PostgreSQL.
pub struct AwsApis {
    aws: steward_shared::aws::AwsContext,
    database: Arc<Postgres>,
}

impl AwsApis {
    pub fn new(aws: steward_shared::aws::AwsContext) -> AwsApis {
        AwsApis {
            aws,
            database: Arc::new(Postgres::new()),
        }
    }
}

#[async_trait::async_trait]
impl Apis for AwsApis {
    async fn secrets(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn SecretsApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsSecrets::new(&config)))
    }

    fn database(&self) -> Arc<dyn Database> {
        self.database.clone()
    }
}
