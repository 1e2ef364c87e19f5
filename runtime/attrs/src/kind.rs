use serde::{Deserialize, Serialize};

/// What a `#[forge::…]` attribute marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Query,
    Mutation,
    Job,
    Cron,
    Workflow,
    Daemon,
    Webhook,
    McpTool,
    Model,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Query,
        Kind::Mutation,
        Kind::Job,
        Kind::Cron,
        Kind::Workflow,
        Kind::Daemon,
        Kind::Webhook,
        Kind::McpTool,
        Kind::Model,
    ];

    /// The attribute's name after `forge::`.
    pub fn attribute_name(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Job => "job",
            Kind::Cron => "cron",
            Kind::Workflow => "workflow",
            Kind::Daemon => "daemon",
            Kind::Webhook => "webhook",
            Kind::McpTool => "mcp_tool",
            Kind::Model => "model",
        }
    }

    /// How messages name the kind: "query", "MCP tool".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::McpTool => "MCP tool",
            other => other.attribute_name(),
        }
    }

    pub fn from_attribute_name(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.attribute_name() == name)
    }

    /// The context type a handler of this kind takes as its first parameter
    /// (`None` for models, which are types rather than handlers).
    pub fn context_type(self) -> Option<&'static str> {
        Some(match self {
            Kind::Query => "QueryContext",
            Kind::Mutation => "MutationContext",
            Kind::Job => "JobContext",
            Kind::Cron => "CronContext",
            Kind::Workflow => "WorkflowContext",
            Kind::Daemon => "DaemonContext",
            Kind::Webhook => "WebhookContext",
            Kind::McpTool => "McpToolContext",
            Kind::Model => return None,
        })
    }
}
