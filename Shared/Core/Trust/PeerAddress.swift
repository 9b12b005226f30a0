/// How a service names a peer it calls: a peer id is the peer's Ed25519
/// public key as 64 hex digits (the same text as an owner marker's), and a
/// peer address is the peer's base URL with the peer id in the user-name
/// position, `https://<peer id>@host:port`, read "peer K at host:port".
/// `HTTPClient` takes the peer id out of the URL before calling (it is never
/// sent) and requires the TLS server to present that key (`PeerPin`), so a
/// call to a peer address reaches that peer or nobody. Paths append as to
/// any base URL.
public enum PeerAddress {
    /// `url` with `peer` as its peer id, or nil if `url` already names another
    /// peer: a record signed by identity A may only lead to A's server.
    public static func pinned(_ url: String, to peer: String) -> String? {
        guard let (scheme, rest) = split(url) else { return nil }
        if let named = self.peer(in: url) { return named == peer.lowercased() ? url : nil }
        return "\(scheme)://\(peer.lowercased())@\(rest)"
    }

    /// The peer id a URL names, lowercased; nil if it names none.
    public static func peer(in url: String) -> String? {
        guard let (_, rest) = split(url), let at = peerEnd(rest) else { return nil }
        return rest[..<at].lowercased()
    }

    /// `url` without its peer id (what is actually requested).
    public static func unpinned(_ url: String) -> String {
        guard let (scheme, rest) = split(url), let at = peerEnd(rest) else { return url }
        return "\(scheme)://\(rest[rest.index(after: at)...])"
    }

    /// Whether `text` is a peer id: 64 hex digits.
    public static func isPeerID(_ text: String) -> Bool { isPeerID(text.utf8[...]) }

    /// Whether `text` is a peer id: 64 hex digits.
    public static func isPeerID(_ text: Substring) -> Bool { isPeerID(text.utf8) }

    // Every DHT message names up to 20 peers by address, so these read bytes, not characters.
    private static func isPeerID(_ bytes: Substring.UTF8View) -> Bool {
        bytes.count == 2 * Ed25519.keyLength && bytes.allSatisfy { Hex.value($0) != nil }
    }

    private static func split(_ url: String) -> (scheme: Substring, rest: Substring)? {
        let bytes = url.utf8
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let rest = bytes[bytes.index(after: colon)...]
        guard rest.starts(with: "//".utf8) else { return nil }
        return (url[..<colon], url[bytes.index(colon, offsetBy: 3)...])
    }

    /// Where the peer id in `rest` (a URL after `scheme://`) ends: the index of its `@`; nil if it names no peer.
    private static func peerEnd(_ rest: Substring) -> String.Index? {
        let bytes = rest.utf8
        let authorityEnd = bytes.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.endIndex
        guard let at = bytes[..<authorityEnd].firstIndex(of: UInt8(ascii: "@")), isPeerID(bytes[..<at]) else { return nil }
        return at
    }
}

/// libcurl's pins (`CURLOPT_PINNEDPUBLICKEY`): `sha256//` and the base64
/// SHA-256 of the key's DER SubjectPublicKeyInfo.
public enum PeerPin {
    /// The DER SubjectPublicKeyInfo of an Ed25519 key is this prefix and the 32 key bytes (RFC 8410).
    static let ed25519Prefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    /// The pin of a key given as DER SubjectPublicKeyInfo.
    public static func pin(subjectPublicKeyInfo: [UInt8]) -> String {
        "sha256//" + Base64.encode(subjectPublicKeyInfo.withUnsafeBytes(MessageAuthentication.sha256))
    }

    /// The pin of a peer id (hex Ed25519 public key), or nil if it is not one.
    public static func pin(peer: String) -> String? {
        guard PeerAddress.isPeerID(peer), let key = [UInt8](hex: peer) else { return nil }
        return pin(subjectPublicKeyInfo: ed25519Prefix + key)
    }
}
