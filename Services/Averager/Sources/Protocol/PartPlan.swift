/// How the flattened vector is cut into parts and which member reduces each
/// part (the reference's `TensorPartContainer` split).
///
/// Each tensor (in schema order) is cut into parts of at most `partSize`
/// elements; parts never span two tensors. Member i is meant to reduce
/// elements `[pivot(i-1), pivot(i))` of the vector; a part that straddles
/// pivots goes to the member whose range covers most of it.
public struct PartPlan: Sendable, Equatable {
    /// One part: where it lies in the flattened vector and who reduces it.
    public struct Part: Sendable, Equatable {
        /// Elements of the flattened vector.
        public let range: Range<Int>
        /// The index of the reducing member in the group.
        public let reducer: Int
        /// The element count.
        public var count: Int { range.count }
    }

    /// All parts in vector order; a part's index is its position here.
    public let parts: [Part]
    /// Part indices per member index, in vector order.
    public let partsByReducer: [[Int]]

    /// - Parameters:
    ///   - tensorCounts: element counts of the tensors in schema order.
    ///   - shares: elements per member (from `LoadBalancing.shares`), summing to the total.
    ///   - partSize: the largest part, in elements (at least 1).
    public init(tensorCounts: [Int], shares: [Int], partSize: Int) {
        var pivots: [Int] = []
        var sum = 0
        for share in shares {
            sum += share
            pivots.append(sum)
        }
        var parts: [Part] = []
        var partsByReducer = Array(repeating: [Int](), count: shares.count)
        var position = 0
        var current = 0
        for count in tensorCounts {
            var offset = 0
            while offset < count {
                let length = min(partSize, count - offset)
                let end = position + length
                var reducer = current
                if end > pivots[current] {
                    // The part crosses into the next members' ranges: give it
                    // to the member holding most of it (the first on ties).
                    var best = pivots[current] - position
                    while end > pivots[current] {
                        current += 1
                        let overlap = min(end, pivots[current]) - pivots[current - 1]
                        if overlap > best { (best, reducer) = (overlap, current) }
                    }
                }
                partsByReducer[reducer].append(parts.count)
                parts.append(Part(range: position..<end, reducer: reducer))
                position = end
                offset += length
            }
        }
        self.parts = parts
        self.partsByReducer = partsByReducer
    }
}
