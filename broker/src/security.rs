//! Connecting to a secured NATS: TLS (`tls://` URLs, or any server that
//! requires it) with a CA file and an optional client certificate, and
//! user/password, token, NKey or credentials-file authentication. The same
//! settings serve async-nats (every role) and the replay's own wire reader.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// How to prove who we are to NATS, and whom to trust.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// PEM CA certificate(s) to trust (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Require TLS even for `nats://` URLs.
    pub require_tls: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// An NKey seed (`SU...`).
    pub nkey_seed: Option<String>,
    /// A `.creds` file (user JWT and NKey seed), for operator mode.
    pub creds_file: Option<PathBuf>,
}

fn invalid(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, what.into())
}

/// `-----BEGIN …-----\nVALUE\n------END …------` blocks of a creds file, in order.
fn creds_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("---")
            && line.contains("BEGIN")
            && let Some(value) = lines.next().filter(|v| !v.is_empty() && !v.starts_with("---"))
        {
            out.push(value);
        }
    }
    out
}

impl NatsAuth {
    pub fn is_plain(&self) -> bool {
        *self == NatsAuth::default()
    }

    /// The options async-nats connects with.
    pub async fn apply(&self, mut options: async_nats::ConnectOptions) -> std::io::Result<async_nats::ConnectOptions> {
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => options = options.add_client_certificate(cert.clone(), key.clone()),
            (None, None) => {}
            _ => return Err(invalid("a client certificate needs both --nats-cert and --nats-key")),
        }
        if self.require_tls {
            options = options.require_tls(true);
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => options = options.user_and_password(user.clone(), password.clone()),
            (None, None) => {}
            _ => return Err(invalid("--nats-user and --nats-password go together")),
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(seed) = &self.nkey_seed {
            nkeys::KeyPair::from_seed(seed).map_err(|e| invalid(format!("--nats-nkey is not an NKey seed: {e}")))?;
            options = options.nkey(seed.clone());
        }
        if let Some(creds) = &self.creds_file {
            options = options
                .credentials_file(creds)
                .await
                .map_err(|e| invalid(format!("cannot read the credentials file {}: {e}", creds.display())))?;
        }
        Ok(options)
    }

    /// The rustls configuration of the wire reader: the CA file (or the
    /// system's roots) and the client certificate.
    pub(crate) fn tls_config(&self) -> std::io::Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(ca) => {
                for cert in CertificateDer::pem_file_iter(ca).map_err(|e| invalid(format!("{}: {e}", ca.display())))? {
                    let cert = cert.map_err(|e| invalid(format!("{}: {e}", ca.display())))?;
                    roots.add(cert).map_err(|e| invalid(format!("{}: {e}", ca.display())))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| invalid(format!("{}: {e}", cert.display())))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(format!("{}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(format!("{}: {e}", key.display())))?;
                builder.with_client_auth_cert(certs, key).map_err(|e| invalid(e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The credential fields of the wire reader's CONNECT, signing the
    /// server's nonce for NKey and creds-file authentication.
    pub(crate) fn connect_fields(
        &self,
        nonce: Option<&str>,
    ) -> std::io::Result<serde_json::Map<String, serde_json::Value>> {
        use base64::Engine;
        let mut fields = serde_json::Map::new();
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            fields.insert("user".into(), user.clone().into());
            fields.insert("pass".into(), password.clone().into());
        }
        if let Some(token) = &self.token {
            fields.insert("auth_token".into(), token.clone().into());
        }
        let sign = |pair: &nkeys::KeyPair| -> std::io::Result<String> {
            let nonce = nonce.ok_or_else(|| invalid("the server sent no nonce to sign"))?;
            let signature = pair.sign(nonce.as_bytes()).map_err(|e| invalid(e.to_string()))?;
            Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature))
        };
        if let Some(seed) = &self.nkey_seed {
            let pair = nkeys::KeyPair::from_seed(seed).map_err(|e| invalid(e.to_string()))?;
            fields.insert("nkey".into(), pair.public_key().into());
            fields.insert("sig".into(), sign(&pair)?.into());
        }
        if let Some(creds) = &self.creds_file {
            let text = std::fs::read_to_string(creds)?;
            let blocks = creds_blocks(&text);
            let [jwt, seed, ..] = blocks[..] else {
                return Err(invalid(format!("{}: not a credentials file (JWT and seed)", creds.display())));
            };
            let pair = nkeys::KeyPair::from_seed(seed).map_err(|e| invalid(e.to_string()))?;
            fields.insert("jwt".into(), jwt.into());
            fields.insert("sig".into(), sign(&pair)?.into());
        }
        Ok(fields)
    }
}

/// The name a TLS handshake verifies the server's certificate against.
pub(crate) fn server_name(host: &str) -> std::io::Result<ServerName<'static>> {
    ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
        .map_err(|e| invalid(format!("{host}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creds_file_gives_its_jwt_then_its_seed() {
        let text = "-----BEGIN NATS USER JWT-----\neyJ0.abc\n------END NATS USER JWT------\n\n\
                    ***** IMPORTANT *****\n\n-----BEGIN USER NKEY SEED-----\nSUAIO3\n------END USER NKEY SEED------\n";
        assert_eq!(creds_blocks(text), vec!["eyJ0.abc", "SUAIO3"]);
    }

    #[test]
    fn credentials_that_go_together_are_checked() {
        let only_user = NatsAuth { user: Some("u".into()), ..NatsAuth::default() };
        let options = async_nats::ConnectOptions::new();
        let checked =
            tokio::runtime::Builder::new_current_thread().build().map(|rt| rt.block_on(only_user.apply(options)));
        assert!(matches!(checked, Ok(Err(_))));
        let signed =
            NatsAuth { nkey_seed: Some(nkeys::KeyPair::new_user().seed().unwrap_or_default()), ..NatsAuth::default() };
        let fields = signed.connect_fields(Some("nonce")).unwrap_or_default();
        assert!(fields["nkey"].as_str().is_some_and(|k| k.starts_with('U')));
        assert!(signed.connect_fields(None).is_err(), "an NKey needs the server's nonce");
    }
}
