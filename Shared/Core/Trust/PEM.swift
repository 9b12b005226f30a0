import COpenSSL

/// PEM text (RFC 7468): base64 between `-----BEGIN LABEL-----` and
/// `-----END LABEL-----` lines, the form curl, Python and OpenSSL read
/// certificates and keys in.
public enum PEM {
    /// One block: the DER bytes under `label` (e.g. `CERTIFICATE`), 64 base64 characters a line.
    public static func encode(_ der: [UInt8], label: String) -> String {
        let text = Base64.encode(der)
        var lines = ["-----BEGIN \(label)-----"]
        var rest = Substring(text)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append("-----END \(label)-----")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The DER bytes of every block labelled `label` in `text`, in order; other blocks are skipped.
    /// - Throws: `PEMError` for a block that is not closed or not base64.
    public static func decode(_ text: String, label: String) throws(PEMError) -> [[UInt8]] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        var blocks: [[UInt8]] = []
        var rest = Substring(text)
        while let start = rest.firstUTF8Range(of: begin) {
            rest = rest[start.upperBound...]
            guard let stop = rest.firstUTF8Range(of: end) else { throw PEMError("a '\(begin)' block has no '\(end)' line") }
            let body = rest[..<stop.lowerBound].filter { !$0.isWhitespace }
            guard let bytes = Base64.decode(String(body)) else { throw PEMError("a '\(label)' block is not base64 text") }
            blocks.append(bytes)
            rest = rest[stop.upperBound...]
        }
        return blocks
    }
}

/// Base64 (RFC 4648, with padding), over libcrypto.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        var output = [UInt8](repeating: 0, count: 4 * ((bytes.count + 2) / 3) + 1)
        let length = EVP_EncodeBlock(&output, bytes, Int32(bytes.count))
        return String(decoding: output[..<Int(length)], as: UTF8.self)
    }

    /// The bytes of `text`, or nil if it is not padded base64.
    public static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        guard !input.isEmpty else { return [] }
        var output = [UInt8](repeating: 0, count: input.count / 4 * 3)
        let length = EVP_DecodeBlock(&output, input, Int32(input.count))
        guard length >= 0 else { return nil }
        // EVP_DecodeBlock counts the padding as zero bytes.
        let padding = input.suffix(2).filter { $0 == UInt8(ascii: "=") }.count
        return Array(output[..<(Int(length) - padding)])
    }
}

/// PEM text that cannot be read.
public struct PEMError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
