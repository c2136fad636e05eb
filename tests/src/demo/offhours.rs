//! Demo section: the off-hours scheduler on a Friday evening and a Monday
//! morning, with the digest the platform and security teams receive.

use serde_json::json;

use super::{heading, show_email, step, DemoStack};
use crate::{event, fixtures};

async fn asg_capacity(asg: &aws_sdk_autoscaling::Client, name: &str) -> anyhow::Result<String> {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await?;
    let g = out
        .auto_scaling_groups()
        .first()
        .ok_or_else(|| anyhow::anyhow!("{name} not found"))?;
    let saved = g
        .tags()
        .iter()
        .find(|t| t.key() == Some("steward:saved-capacity"))
        .and_then(|t| t.value());
    Ok(format!(
        "min {} max {} desired {}{}",
        g.min_size().unwrap_or(0),
        g.max_size().unwrap_or(0),
        g.desired_capacity().unwrap_or(0),
        saved
            .map(|s| format!(" (steward:saved-capacity={s})"))
            .unwrap_or_default()
    ))
}

async fn db_status(rds: &aws_sdk_rds::Client, id: &str) -> anyhow::Result<String> {
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await?;
    Ok(out
        .db_instances()
        .first()
        .and_then(|d| d.db_instance_status())
        .unwrap_or_default()
        .to_string())
}

async fn show_digest(stack: &DemoStack) -> anyhow::Result<()> {
    // The chat JSON of a message is shown once, in the tag enforcer's section.
    for (subject, text, _chat) in stack.new_notifications().await? {
        show_email(&subject, &text);
    }
    Ok(())
}

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("offhours-scheduler: dev stops on Friday evening and is back on Monday morning");
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let rds = aws_sdk_rds::Client::new(&config);

    let web = fixtures::launch_one(
        &config,
        &[
            ("env", "dev"),
            ("project", "shop"),
            ("cost_center", "cc-42"),
        ],
    )
    .await?;
    let late = fixtures::launch_one(
        &config,
        &[
            ("env", "dev"),
            ("project", "ml"),
            ("steward:offhours", "off=(M-F,21);on=(M-F,9);tz=et"),
        ],
    )
    .await?;
    let prod = fixtures::launch_one(&config, &[("env", "prod"), ("project", "shop")]).await?;
    let pinned =
        fixtures::launch_one(&config, &[("env", "dev"), ("steward:exempt", "true")]).await?;
    let typo = fixtures::launch_one(
        &config,
        &[
            ("env", "dev"),
            ("steward:offhours", "off=(M-F,19);on=(M-F,7"),
        ],
    )
    .await?;
    ec2.create_launch_template()
        .launch_template_name("demo-workers")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await?;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("dev-workers")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("demo-workers")
                .build(),
        )
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .availability_zones("us-east-1a")
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id("dev-workers")
                .resource_type("auto-scaling-group")
                .key("env")
                .value("dev")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await?;
    rds.create_db_instance()
        .db_instance_identifier("dev-orders-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("orders")
        .master_user_password("demo-only-password-1")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("env")
                .value("dev")
                .build(),
        )
        .send()
        .await?;
    step(&format!(
        "dev web {web}, dev ML box {late} (own hours: off 21:00, on 09:00 US Eastern), prod {prod}"
    ));
    step(&format!(
        "exempt dev box {pinned}, dev box {typo} with a typo in its schedule tag"
    ));
    step("dev Auto Scaling group dev-workers (1/4/2) and RDS dev-orders-db; default schedule off=(M-F,19);on=(M-F,7) UTC");

    let mut scheduler = stack.function("offhours-scheduler", &[]).await?;
    let mut friday = event("scheduler-eventbridge-rule.json");
    friday["id"] = json!("demo-friday-1905");
    friday["time"] = json!("2026-11-20T19:05:00Z");
    step("EventBridge fires the every-15-minutes rule on Friday 2026-11-20 at 19:05 UTC");
    let out = scheduler.invoke(&friday).await?.response();
    step(&format!(
        "web {} | ML box {} | prod {} | exempt {} | typo {}",
        fixtures::instance_state(&config, &web).await?,
        fixtures::instance_state(&config, &late).await?,
        fixtures::instance_state(&config, &prod).await?,
        fixtures::instance_state(&config, &pinned).await?,
        fixtures::instance_state(&config, &typo).await?
    ));
    step(&format!(
        "dev-workers: {}",
        asg_capacity(&asg, "dev-workers").await?
    ));
    step(&format!(
        "dev-orders-db: {}",
        db_status(&rds, "dev-orders-db").await?
    ));
    step(&format!(
        "function response: notification {}",
        out["notification"]
    ));
    show_digest(stack).await?;

    step("the same event delivered again (at-least-once): actions repeat harmlessly, no second digest");
    let again = scheduler.invoke(&friday).await?.response();
    step(&format!("notification: {}", again["notification"]));

    let mut monday = event("scheduler-eventbridge-scheduler.json");
    monday["scheduledTime"] = json!("2026-11-23T07:05:00Z");
    step("EventBridge Scheduler fires on Monday 2026-11-23 at 07:05 UTC with {\"scheduledTime\": \"<aws.scheduler.scheduled-time>\"}");
    scheduler.invoke(&monday).await?.response();
    step(&format!(
        "web {} | ML box {} (its own on time is 09:00 Eastern)",
        fixtures::instance_state(&config, &web).await?,
        fixtures::instance_state(&config, &late).await?
    ));
    step(&format!(
        "dev-workers: {}",
        asg_capacity(&asg, "dev-workers").await?
    ));
    step(&format!(
        "dev-orders-db: {}",
        db_status(&rds, "dev-orders-db").await?
    ));
    show_digest(stack).await?;
    Ok(())
}
