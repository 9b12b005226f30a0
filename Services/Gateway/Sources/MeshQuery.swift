import Shared

/// What `GET /v1/mesh` (and the dashboard that polls it) looks at. The DHT
/// cannot list its keys, so the grid and the averaging run are named here;
/// the defaults are those of `hivemind mesh up` and `hivemind train`.
public struct MeshQuery: Sendable {
    /// The experts' uid prefix, a name and a dot (`prefix`, default `ffn.`).
    public var prefix = "ffn."
    /// The grid's dimension sizes (`grid`, e.g. `4,4`); nil infers them from the uids found.
    public var gridSize: [Int]?
    /// The averaging run (`run`, default `digits`): its group keys, donors and progress records.
    public var run = "digits"
    /// Group keys are read for every bit string up to this length (`group_bits`, 0 to 4, default 2).
    public var groupBits = 2

    /// Grids larger than this are refused: the page draws one cell per expert.
    static let maxCells = 4096

    public init() {}

    /// - Throws: `HTTPError` 400 naming the parameter and what it should be.
    public init(query: [String: String]) throws(HTTPError) {
        if let prefix = query["prefix"] {
            guard ExpertUID.isValidPrefix(prefix), !prefix.dropLast().contains(".") else {
                throw .badRequest("query 'prefix' must be an expert name and a dot, e.g. prefix=ffn., got '\(prefix.prefix(64))'")
            }
            self.prefix = prefix
        }
        if let text = query["grid"] {
            let sizes = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            guard !sizes.isEmpty, sizes.count <= 8, sizes.allSatisfy({ ($0 ?? 0) > 0 }),
                  Self.cells(sizes.map { $0! }) <= Self.maxCells else {
                throw .badRequest("query 'grid' must list positive dimension sizes with at most \(Self.maxCells) cells in all, e.g. grid=4,4, got '\(text.prefix(64))'")
            }
            gridSize = sizes.map { $0! }
        }
        if let run = query["run"] {
            let allowed = run.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }
            guard !run.isEmpty, run.utf8.count <= 128, allowed else {
                throw .badRequest("query 'run' must be an averaging prefix of 1 to 128 letters, digits, '_' or '-', e.g. run=digits, got '\(run.prefix(64))'")
            }
            self.run = run
        }
        if let text = query["group_bits"] {
            guard let bits = Int(text), (0...4).contains(bits) else {
                throw .badRequest("query 'group_bits' must be an integer from 0 to 4, got '\(text.prefix(64))'")
            }
            groupBits = bits
        }
    }

    /// The product of the sizes, or maxCells + 1 as soon as it passes maxCells
    /// (the product of a client's sizes could overflow).
    private static func cells(_ sizes: [Int]) -> Int {
        var cells = 1
        for size in sizes {
            guard size <= maxCells else { return maxCells + 1 }
            cells *= size
            guard cells <= maxCells else { return maxCells + 1 }
        }
        return cells
    }

    /// The averaging prefixes of a run: the run itself (for callers of
    /// `/v1/average`), and the collaborative optimizer's `{run}_grads` (its
    /// epoch steps) and `{run}_state` (the trainers' shared state).
    var averagingPrefixes: [String] { [run, "\(run)_grads", "\(run)_state"] }

    /// The averagers' group keys `{prefix}.0b{bits}` for every bit string up to `groupBits` long.
    var groupKeys: [String] {
        var bitStrings = [""]
        var all = [""]
        for _ in 0..<groupBits {
            bitStrings = bitStrings.flatMap { [$0 + "0", $0 + "1"] }
            all += bitStrings
        }
        return averagingPrefixes.flatMap { prefix in all.map { "\(prefix).0b\($0)" } }
    }

    /// Where averagers that share a prefix's state declare themselves donors.
    var donorKeys: [String] { averagingPrefixes.map { "\($0).all_averagers" } }

    /// Trainers' progress records: `{run}_progress` -> peer -> `{"epoch", "loss", ...}`,
    /// the key of the reference's `ProgressTracker`.
    var progressKey: String { "\(run)_progress" }
}
