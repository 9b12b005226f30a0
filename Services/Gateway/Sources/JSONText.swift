/// Pieces of JSON text written directly, for the routing record's hot path.
enum JSONText {
    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else {
            return "\"" + value + "\""
        }
        var text = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }

    /// A finite Float as a JSON number with the fewest digits that read back (through a Double, as
    /// JSON readers do) as the same Float; the Double's digits in the rare case they do not.
    static func number(_ value: Float) -> String {
        precondition(value.isFinite, "JSON has no non-finite numbers")
        let short = value.description
        if let parsed = Double(short), Float(parsed) == value { return short }
        return Double(value).description
    }
}
