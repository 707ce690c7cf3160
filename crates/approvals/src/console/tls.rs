//! The console's self-signed certificate, for binding beyond loopback.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// A certificate and key (DER), kept in `dir` per address so the fingerprint a phone was
/// shown stays the same across restarts.
pub struct Identity {
    pub cert: Vec<u8>,
    key: Vec<u8>,
}

impl Identity {
    pub fn load_or_make(dir: &Path, ip: IpAddr) -> io::Result<Identity> {
        let name = ip.to_string().replace([':', '.'], "_");
        let (cert_path, key_path) = (
            dir.join(format!("cert-{name}.der")),
            dir.join(format!("key-{name}.der")),
        );
        if let (Ok(cert), Ok(key)) = (fs::read(&cert_path), fs::read(&key_path)) {
            return Ok(Identity { cert, key });
        }
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), ip.to_string()])
                .map_err(|e| io::Error::other(format!("making a certificate: {e}")))?;
        let identity = Identity {
            cert: made.cert.der().to_vec(),
            key: made.key_pair.serialize_der(),
        };
        crate::private::create_dir(dir)?;
        for (path, bytes) in [(&key_path, &identity.key), (&cert_path, &identity.cert)] {
            crate::private::create_file(path)?.write_all(bytes)?;
        }
        Ok(identity)
    }

    /// SHA-256 of the certificate, as colon-separated hex (what browsers show).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }

    pub fn rustls(&self) -> io::Result<RustlsConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(RustlsConfig::from_config(Arc::new(config)))
    }
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
