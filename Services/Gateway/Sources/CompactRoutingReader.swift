import Shared

/// Reads a routing record in exactly the form `RoutingRecord.serialized()` writes
/// (`[[{"uid":"ffn.0.1","url":"http://...","weight":0.25},...],...]`, no spaces,
/// no escapes), straight from the bytes: each distinct uid is parsed and checked
/// against the grid once. Anything else is nil, and the caller takes the generic
/// JSON path, which reads every valid form and words the errors.
enum CompactRoutingReader {
    static func read(_ text: String, prefix: String, gridSize: [Int]) -> [[RoutingRecord.Route]]? {
        var text = text
        return text.withUTF8 { bytes in
            var reader = Reader(bytes: bytes, prefix: prefix, gridSize: gridSize)
            guard let samples = reader.list({ reader in reader.list { $0.route() } }), reader.position == bytes.count else { return nil }
            return samples
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        let prefix: String
        let gridSize: [Int]
        var position = 0
        /// uid text -> the uid, nil when it is not a uid on the grid.
        var uids: [String: ExpertUID?] = [:]
        /// url text -> one shared copy.
        var urls: [String: String] = [:]

        init(bytes: UnsafeBufferPointer<UInt8>, prefix: String, gridSize: [Int]) {
            self.bytes = bytes
            self.prefix = prefix
            self.gridSize = gridSize
        }

        /// `[` item (`,` item)* `]`, or `[]`.
        mutating func list<T>(_ item: (inout Reader) -> T?) -> [T]? {
            guard take("[") else { return nil }
            var items: [T] = []
            if take("]") { return items }
            repeat {
                guard let value = item(&self) else { return nil }
                items.append(value)
            } while take(",")
            return take("]") ? items : nil
        }

        /// `{"uid":"...","url":"...","weight":number}`.
        mutating func route() -> RoutingRecord.Route? {
            guard take("{\"uid\":\""), let uidText = stringBody(), take("\",\"url\":\""), let urlText = stringBody(),
                  take("\",\"weight\":"), let weight = number().map(Float.init), take("}") else { return nil }
            let cachedUID = uids[uidText] ?? {
                let parsed = ExpertUID(uidText).flatMap { RoutingRecord.isOnGrid($0, prefix: prefix, gridSize: gridSize) ? $0 : nil }
                uids[uidText] = .some(parsed)
                return parsed
            }()
            guard let uid = cachedUID, weight.isFinite, weight >= 0 else { return nil }
            let url = urls[urlText] ?? {
                urls[urlText] = urlText
                return urlText
            }()
            return RoutingRecord.Route(uid: uid, url: url, weight: weight)
        }

        /// Consumes `literal` if the bytes continue with it.
        mutating func take(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[position + offset] != literal.utf8Start[offset] { return false }
            position += count
            return true
        }

        /// The text up to the next quote, which stays unread; nil if it holds an escape or a control character.
        mutating func stringBody() -> String? {
            let start = position
            while position < bytes.count, bytes[position] != UInt8(ascii: "\"") {
                guard bytes[position] != UInt8(ascii: "\\"), bytes[position] >= 0x20 else { return nil }
                position += 1
            }
            guard position < bytes.count else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        }

        /// A JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
        mutating func number() -> Double? {
            let start = position
            _ = take("-")
            let integerStart = position
            let integerDigits = digits()
            guard integerDigits == 1 || (integerDigits > 1 && bytes[integerStart] != UInt8(ascii: "0")) else { return nil }
            if take("."), digits() == 0 { return nil }
            if take("e") || take("E") {
                if !take("+") { _ = take("-") }
                guard digits() > 0 else { return nil }
            }
            return Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
        }

        /// Consumes decimal digits; returns how many.
        mutating func digits() -> Int {
            let start = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            return position - start
        }
    }
}
