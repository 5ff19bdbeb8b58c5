//! A connector for host tests: it stores whatever connect form it is given as its
//! secrets and validates everything, so a test can focus on what the host does.

use async_trait::async_trait;
use patchbay_core::{
    AuthRequest, Connector, ConnectorContext, ConnectorDescriptor, Credentials, OAuthTokens,
    QueryOutput, Result, SecretString, ValidationReport,
};
use serde_json::{json, Value};

/// Keeps the connect form as the connection's secrets; described by its descriptor.
pub struct FormEcho(pub &'static ConnectorDescriptor);

#[async_trait]
impl Connector for FormEcho {
    type Config = Value;
    type Secrets = Value;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        self.0
    }

    async fn authenticate(&self, request: AuthRequest) -> Result<Credentials<Value, Value>> {
        let AuthRequest::Form(fields) = request else {
            return Err(patchbay_core::Error::unsupported("form only"));
        };
        // A token pair in the form goes to the tokens slot, as an OAuth grant's would.
        let mut fields = fields.0;
        let text =
            |value: Option<Value>| value.and_then(|value| value.as_str().map(SecretString::from));
        let access_token = text(fields.remove("access_token"));
        let refresh_token = text(fields.remove("refresh_token"));
        let credentials = Credentials::new(json!({}), Value::Object(fields));
        Ok(match access_token {
            Some(access_token) => credentials.with_tokens(OAuthTokens {
                refresh_token,
                ..OAuthTokens::bearer(access_token)
            }),
            None => credentials,
        })
    }

    async fn validate(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &mut Credentials<Value, Value>,
    ) -> Result<ValidationReport> {
        Ok(ValidationReport::new(self.0.id, Vec::new()))
    }

    async fn query(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &Credentials<Value, Value>,
        _operation: &str,
        _params: Value,
    ) -> Result<QueryOutput> {
        Ok(QueryOutput::default())
    }
}
