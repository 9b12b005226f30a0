import SharedCore

/// The form of a DHT node's address as nodes pass it to each other:
/// `http://host:port` or `https://host:port`, optionally with the node's peer
/// id before the host (`https://<peer id>@host:port`, see `PeerAddress`), and
/// nothing else (no path, query, other user, fragment or escapes), at most 256 bytes. The host is a name
/// (letters, digits, `-` and `.`), an IPv4 address or a bracketed IPv6
/// address; the port is required (`https://dht.example.org:443`). A node that
/// accepted more would let any message make it call any URL.
enum NodeAddress {
    static let maxBytes = 256

    /// What is wrong with `address` as a peer address, or nil if nothing is.
    static func problem(_ address: String) -> String? {
        let bytes = Array(address.utf8)
        guard bytes.count <= maxBytes else { return "it is \(bytes.count) bytes; at most \(maxBytes) are allowed" }
        var rest: ArraySlice<UInt8>
        if address.hasPrefix("http://") { rest = bytes.dropFirst(7) }
        else if address.hasPrefix("https://") { rest = bytes.dropFirst(8) }
        else { return "it does not start with http:// or https://" }
        if let at = rest.firstIndex(of: UInt8(ascii: "@")), at - rest.startIndex == 2 * Ed25519.keyLength, rest[..<at].allSatisfy({ Hex.value($0) != nil }) {
            rest = rest[(at + 1)...]
        }
        guard let colon = rest.lastIndex(of: UInt8(ascii: ":")), colon > rest.startIndex else {
            return "it has no port; expected http(s)://host:port"
        }
        let host = rest[..<colon], port = rest[(colon + 1)...]
        guard (1...5).contains(port.count), port.allSatisfy(isDigit), let number = Int(String(decoding: port, as: UTF8.self)),
              (1...65_535).contains(number) else {
            return "its port is not a number from 1 to 65535; expected http(s)://host:port with nothing after the port (no path, query or fragment)"
        }
        if host.first == UInt8(ascii: "[") {
            guard host.count > 2, host.last == UInt8(ascii: "]"),
                  host.dropFirst().dropLast().allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
                return "its host is not a bracketed IPv6 address"
            }
        } else {
            guard !host.isEmpty, host.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }),
                  host.first != UInt8(ascii: "-"), host.first != UInt8(ascii: ".") else {
                return "its host may hold only letters, digits, '-' and '.' (or be a bracketed IPv6 address); no user, path, query or fragment"
            }
        }
        return nil
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
