/// An expert's uid: a name and grid coordinates, `ffn.3.14` (coordinates are
/// integers without leading zeros, as in the reference). Hosts declare every
/// prefix of a uid in the DHT so clients can walk the grid one dimension at a time.
public struct ExpertUID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The part before the first dot, e.g. `ffn`.
    public let name: String
    /// The grid coordinates, e.g. `[3, 14]`.
    public let coordinates: [Int]

    /// Parses `name.c1.c2...`; nil unless it has a non-empty name without dots
    /// and at least one coordinate, each a canonical non-negative integer.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, !parts[0].isEmpty else { return nil }
        var coordinates: [Int] = []
        for part in parts.dropFirst() {
            guard let value = Self.coordinate(part) else { return nil }
            coordinates.append(value)
        }
        self.name = String(parts[0])
        self.coordinates = coordinates
    }

    public init(name: String, coordinates: [Int]) {
        self.name = name
        self.coordinates = coordinates
    }

    public var description: String { ([name] + coordinates.map(String.init)).joined(separator: ".") }

    /// The prefix that holds this uid's last coordinate as a subkey: `ffn.3.` for `ffn.3.14`.
    public var parentPrefix: String {
        ([name] + coordinates.dropLast().map(String.init)).joined(separator: ".") + "."
    }

    /// Every prefix of the grid walk with the coordinate it leads to:
    /// for `ffn.3.14`, (`ffn.`, 3) and (`ffn.3.`, 14).
    public var prefixSteps: [(prefix: String, coordinate: Int)] {
        coordinates.indices.map { depth in
            (([name] + coordinates[..<depth].map(String.init)).joined(separator: ".") + ".", coordinates[depth])
        }
    }

    public static func < (lhs: ExpertUID, rhs: ExpertUID) -> Bool {
        lhs.name != rhs.name ? lhs.name < rhs.name : lhs.coordinates.lexicographicallyPrecedes(rhs.coordinates)
    }

    /// Whether `text` is a grid prefix such as `ffn.` or `ffn.3.`: a name,
    /// canonical coordinates, and a trailing dot.
    public static func isValidPrefix(_ text: String) -> Bool {
        guard text.hasSuffix(".") else { return false }
        let parts = text.dropLast().split(separator: ".", omittingEmptySubsequences: false)
        return !parts[0].isEmpty && parts.dropFirst().allSatisfy { coordinate($0) != nil }
    }

    /// A canonical non-negative integer: digits only, no leading zeros, at most 18 of them.
    static func coordinate(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              text == "0" || text.first != "0" else { return nil }
        return Int(text)
    }
}

/// A grid of uids such as `ffn.[0:4].[0:8]`: fixed coordinates or half-open
/// ranges `[from:to]` per dimension, as the reference's `--expert_pattern`.
public struct ExpertPattern: Sendable, CustomStringConvertible {
    public let name: String
    public let ranges: [Range<Int>]
    public let description: String

    /// - Throws: `OptionError` naming the block that is neither a coordinate nor a range.
    public init(_ text: String) throws(OptionError) {
        let blocks = text.split(separator: ".", omittingEmptySubsequences: false)
        guard blocks.count >= 2, !blocks[0].isEmpty, !blocks[0].contains("[") else {
            throw OptionError("expert pattern '\(text)' must be NAME.DIM[.DIM...], e.g. ffn.[0:4].[0:8]")
        }
        var ranges: [Range<Int>] = []
        for block in blocks.dropFirst() {
            if let value = ExpertUID.coordinate(block) {
                ranges.append(value..<(value + 1))
            } else if block.first == "[", block.last == "]" {
                let bounds = block.dropFirst().dropLast().split(separator: ":", omittingEmptySubsequences: false)
                guard bounds.count == 2, let low = ExpertUID.coordinate(bounds[0]), let high = ExpertUID.coordinate(bounds[1]), low < high else {
                    throw OptionError("expert pattern '\(text)': block '\(block)' must be [from:to] with 0 <= from < to")
                }
                ranges.append(low..<high)
            } else {
                throw OptionError("expert pattern '\(text)': block '\(block)' must be a coordinate or a range [from:to]")
            }
        }
        name = String(blocks[0])
        self.ranges = ranges
        description = text
    }

    /// The number of uids in the grid.
    public var count: Int { ranges.reduce(1) { $0 * $1.count } }

    /// Every uid of the grid, in row-major order.
    public var uids: [ExpertUID] {
        ranges.reduce([[Int]]([[]])) { partial, range in
            partial.flatMap { prefix in range.map { prefix + [$0] } }
        }.map { ExpertUID(name: name, coordinates: $0) }
    }
}
