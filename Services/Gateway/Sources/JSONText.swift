/// JSON numbers written directly, for the routing record's hot path (its strings:
/// `JSON.writeString`).
enum JSONText {
    /// A finite Float as a JSON number with the fewest digits that read back (through a Double, as
    /// JSON readers do) as the same Float; the Double's digits in the rare case they do not.
    static func number(_ value: Float) -> String {
        precondition(value.isFinite, "JSON has no non-finite numbers")
        let short = value.description
        if let parsed = Double(short), Float(parsed) == value { return short }
        return Double(value).description
    }
}
