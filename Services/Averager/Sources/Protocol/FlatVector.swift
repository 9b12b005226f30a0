#if canImport(Glibc)
import Glibc
#endif
import Shared

/// The flattened float32 vector of one averaging call, in one buffer that the
/// round's tasks share: senders read each part from it to send it, and the
/// averages are written back into it in place.
///
/// Why not a `[Float]`: the tasks read parts while averages arrive for other
/// parts, and the first write into an array that the readers still hold
/// copies all of it (copy-on-write), a fresh 64 MiB for a 64 MiB vector.
///
/// `@unchecked Sendable`: callers touch disjoint ranges at a time. A part is
/// read before it is sent and written only after its average came back, and
/// parts never overlap (`PartPlan`).
final class FlatVector: @unchecked Sendable {
    let count: Int
    private let base: UnsafeMutablePointer<Float>

    /// An uninitialized vector of `count` elements; the caller writes every element.
    init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        Self.adviseHugePages(UnsafeMutableRawPointer(base), byteCount: count * 4)
    }

    /// A vector holding a copy of `values`.
    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { write(0..<values.count, from: $0) }
    }

    deinit { base.deallocate() }

    /// A copy of every element.
    var elements: [Float] { Array(buffer(0..<count)) }

    /// Elements `range`, for reading or writing in place.
    func buffer(_ range: Range<Int>) -> UnsafeMutableBufferPointer<Float> {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) outside a vector of \(count)")
        return UnsafeMutableBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// A copy of elements `range` as a 1-D tensor.
    func tensor(_ range: Range<Int>) -> Tensor {
        try! Tensor(shape: [range.count], scalars: Array(buffer(range)))  // the count matches by construction
    }

    /// A copy of elements `range` as float32 bytes (little-endian, as on the wire).
    func bytes(_ range: Range<Int>) -> [UInt8] {
        let source = UnsafeRawBufferPointer(buffer(range))
        return [UInt8](unsafeUninitializedCapacity: source.count) { target, initialized in
            if let base = target.baseAddress, let from = source.baseAddress {
                Self.adviseHugePages(UnsafeMutableRawPointer(base), byteCount: source.count)
                UnsafeMutableRawPointer(base).copyMemory(from: from, byteCount: source.count)
            }
            initialized = source.count
        }
    }

    /// Overwrites elements `range` with `values`.
    func write(_ range: Range<Int>, from values: UnsafeBufferPointer<Float>) {
        precondition(values.count == range.count, "\(values.count) values for a range of \(range.count)")
        guard let source = values.baseAddress else { return }
        buffer(range).baseAddress!.update(from: source, count: range.count)
    }

    /// A large buffer is written once, page by page: 2 MiB pages fault 512
    /// times less often than 4 KiB ones (THP runs in "madvise" mode here).
    private static func adviseHugePages(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        #if os(Linux)
        let page: UInt = 2 << 20
        guard byteCount >= 2 * Int(page) else { return }
        let start = (UInt(bitPattern: pointer) + page - 1) & ~(page - 1)
        let end = (UInt(bitPattern: pointer) + UInt(byteCount)) & ~(page - 1)
        if end > start, let region = UnsafeMutableRawPointer(bitPattern: start) { _ = madvise(region, Int(end - start), MADV_HUGEPAGE) }
        #endif
    }
}
