import Shared

/// How `GET /v1/state` answers a request's preconditions and range, per
/// RFC 9110 (13.1, 13.2.2 and 14), for the one representation a donor has:
/// its snapshot, with a strong `ETag`. In the RFC's order: `If-Match` fails
/// (412) unless it is `*` or lists the current tag (strong comparison);
/// `If-None-Match` that is `*` or lists the tag (weak comparison) gives 304;
/// a `Range` applies unless an `If-Range` names another tag or a date (the
/// donor keeps no modification dates), and then gives 206, or 416 when it
/// starts past the end. Only single byte ranges are served (`bytes=A-B`,
/// `bytes=A-`, `bytes=-N`); anything else in those fields is a 400.
enum StateRequest {
    enum Answer: Equatable {
        /// 200 with the whole state.
        case whole
        /// 206 with these bytes.
        case range(Range<Int>)
        /// 304: the client's copy (`If-None-Match`) is current.
        case notModified
        /// 412: `If-Match` names no current tag.
        case preconditionFailed
        /// 416: the range starts at or past the end.
        case rangeNotSatisfiable
    }

    /// The documented form of `Range` (also in openapi/averager.yaml).
    static let rangePattern = "^[Bb][Yy][Tt][Ee][Ss]=([0-9]+-[0-9]*|-[0-9]+)$"

    /// Decides the answer for a state of `size` bytes whose tag is `etag` (without quotes).
    /// - Parameter headers: the request's headers, names lowercased.
    /// - Throws: `AveragerError` 400 for a malformed `Range`, `If-Match`, `If-None-Match` or `If-Range`.
    static func answer(headers: [String: String], etag: String, size: Int) throws(AveragerError) -> Answer {
        if let field = headers["if-match"] {
            let tags = try entityTags(field, "If-Match")
            guard tags.map({ $0.contains { !$0.weak && $0.opaque == etag } }) ?? true else { return .preconditionFailed }
        }
        if let field = headers["if-none-match"] {
            let tags = try entityTags(field, "If-None-Match")
            if tags.map({ $0.contains { $0.opaque == etag } }) ?? true { return .notModified }
        }
        guard let field = headers["range"] else { return .whole }
        let range = try byteRange(field)
        if let condition = headers["if-range"] {
            // An entity tag that is not ours, a weak one, or a date (we have no Last-Modified): send everything.
            guard condition.first == "\"" else { return .whole }
            guard let tags = try entityTags(condition, "If-Range"), tags.count == 1,
                  !tags[0].weak, tags[0].opaque == etag else { return .whole }
        }
        return range.resolve(size: size).map(Answer.range) ?? .rangeNotSatisfiable
    }

    /// One byte range as the client asked for it.
    enum ByteRange: Equatable {
        /// `bytes=A-B` (`last` nil for `bytes=A-`).
        case from(Int, through: Int?)
        /// `bytes=-N`: the last N bytes.
        case suffix(Int)

        /// The bytes of a representation of `size` bytes; nil when none can be served.
        func resolve(size: Int) -> Range<Int>? {
            switch self {
            case .from(let first, let last):
                guard first < size else { return nil }
                // Clamp before adding one: the last position may be Int.max.
                return first..<(min(size - 1, last ?? .max) + 1)
            case .suffix(let count):
                guard count > 0, size > 0 else { return nil }
                return (size - min(count, size))..<size
            }
        }
    }

    /// Parses a `Range` field (`rangePattern`).
    static func byteRange(_ field: String) throws(AveragerError) -> ByteRange {
        let malformed = AveragerError(.badRequest, "Range must be one byte range: 'bytes=START-END', 'bytes=START-' or 'bytes=-COUNT' "
            + "with START <= END, got '\(field.prefix(80))'")
        guard field.count > 6, field.prefix(6).lowercased() == "bytes=" else { throw malformed }
        let spec = field.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { throw malformed }
        let firstText = spec[..<dash], lastText = spec[spec.index(after: dash)...]
        guard firstText.allSatisfy(\.isASCIIDigit), lastText.allSatisfy(\.isASCIIDigit), !(firstText.isEmpty && lastText.isEmpty) else {
            throw malformed
        }
        // Positions past Int.max are past any state's end: read them as Int.max.
        let number = { (text: Substring) in Int(text) ?? .max }
        guard !firstText.isEmpty else { return .suffix(number(lastText)) }
        let first = number(firstText)
        guard !lastText.isEmpty else { return .from(first, through: nil) }
        let last = number(lastText)
        guard first <= last else { throw malformed }
        return .from(first, through: last)
    }

    /// The entity tags of an `If-Match`, `If-None-Match` or `If-Range` field; nil for `*`.
    static func entityTags(_ field: String, _ name: String) throws(AveragerError) -> [(weak: Bool, opaque: String)]? {
        // libmicrohttpd strips the whitespace around a field's value.
        if field == "*" { return nil }
        let malformed = AveragerError(.badRequest, "\(name) must be * or a comma-separated list of entity tags such as \"4f2a\" "
            + "or W/\"4f2a\", got '\(field.prefix(80))'")
        var tags: [(weak: Bool, opaque: String)] = []
        var rest = Substring(field)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            let weak = rest.hasPrefix("W/")
            if weak { rest = rest.dropFirst(2) }
            guard rest.first == "\"" else { throw malformed }
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: "\"") else { throw malformed }
            let opaque = rest[..<close]
            // etagc: visible ASCII but the double quote, or obs-text.
            guard opaque.unicodeScalars.allSatisfy({ $0.value == 0x21 || (0x23...0x7E).contains($0.value) || $0.value >= 0x80 }) else {
                throw malformed
            }
            tags.append((weak, String(opaque)))
            rest = rest[rest.index(after: close)...].drop { $0 == " " || $0 == "\t" }
            guard let next = rest.first else { return tags }
            guard next == "," else { throw malformed }
            rest = rest.dropFirst()
        }
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
