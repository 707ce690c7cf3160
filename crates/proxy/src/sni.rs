//! The server name a TLS client asks for, read from its ClientHello (RFC 8446 §4.1.2,
//! RFC 6066 §3) without decrypting anything. Every length is checked; anything malformed,
//! fragmented across records, or without a host name is `None`, and the proxy refuses it.

/// The SNI host name in `record` (the first TLS record the client sent), lowercased.
pub fn server_name(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    // TLSPlaintext: handshake (22), legacy version, length; the ClientHello must fit in it.
    if r.u8()? != 22 {
        return None;
    }
    r.take(2)?;
    let mut body = Reader(r.vec16()?);
    // Handshake: client_hello (1), 24-bit length.
    if body.u8()? != 1 {
        return None;
    }
    let len = body.u24()?;
    let mut hello = Reader(body.take(len)?);
    hello.take(2 + 32)?; // legacy_version, random
    hello.vec8()?; // legacy_session_id
    hello.vec16()?; // cipher_suites
    hello.vec8()?; // legacy_compression_methods
    let mut exts = Reader(hello.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind == 0 {
            return host_name(data);
        }
    }
    None
}

/// ServerNameList: the first (and only allowed) host_name entry.
fn host_name(ext: &[u8]) -> Option<String> {
    let mut list = Reader(Reader(ext).vec16()?);
    while !list.0.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type == 0 {
            let name = std::str::from_utf8(name).ok()?;
            return (!name.is_empty()).then(|| name.to_ascii_lowercase());
        }
    }
    None
}

/// A bounds-checked cursor: every read returns `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal but well-formed ClientHello record with the given SNI entries.
    pub fn client_hello(names: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for n in names {
            list.push(0u8);
            list.extend((n.len() as u16).to_be_bytes());
            list.extend(n.as_bytes());
        }
        let mut sni = (list.len() as u16).to_be_bytes().to_vec();
        sni.extend(list);
        let mut exts = Vec::new();
        // An unrelated extension first (supported_versions), then server_name.
        exts.extend([0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        if !names.is_empty() {
            exts.extend([0x00, 0x00]);
            exts.extend((sni.len() as u16).to_be_bytes());
            exts.extend(sni);
        }
        let mut hello = vec![0x03, 0x03];
        hello.extend([7u8; 32]);
        hello.extend([0]); // session id
        hello.extend([0x00, 0x02, 0x13, 0x01]); // one cipher suite
        hello.extend([0x01, 0x00]); // null compression
        hello.extend((exts.len() as u16).to_be_bytes());
        hello.extend(exts);
        let mut hs = vec![1u8];
        hs.extend(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend(hello);
        let mut rec = vec![22u8, 0x03, 0x01];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn reads_the_host_name() {
        assert_eq!(
            server_name(&client_hello(&["Crates.IO"])).as_deref(),
            Some("crates.io")
        );
    }

    #[test]
    fn no_sni_or_garbage_is_none() {
        assert_eq!(server_name(&client_hello(&[])), None);
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(server_name(&[]), None);
    }

    #[test]
    fn every_truncation_is_none_never_a_panic() {
        let full = client_hello(&["example.com"]);
        for cut in 0..full.len() {
            assert_eq!(server_name(&full[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn lying_lengths_are_none() {
        let mut rec = client_hello(&["example.com"]);
        let last = rec.len() - 1;
        rec[3] = 0xff; // record length larger than the data
        assert_eq!(server_name(&rec), None);
        let mut rec = client_hello(&["example.com"]);
        rec.truncate(last);
        assert_eq!(server_name(&rec), None);
    }
}
