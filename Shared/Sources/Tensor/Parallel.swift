import Dispatch
import Foundation

/// Splits long loops over contiguous memory across the machine's cores.
///
/// Bulk conversions (float16 casts, quantization) are memory-bound, and one
/// core cannot saturate memory bandwidth or absorb the page faults of a fresh
/// output buffer alone; short loops stay on the calling thread because
/// waking workers costs more than it saves.
enum Parallel {
    /// How many chunks run at once: the number of active cores.
    static let width = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The chunk boundaries for `count` items: at most `width` chunks, each at
    /// least `minimumChunk` long (except a lone short one) and, except the
    /// last, a multiple of `alignment`.
    static func chunks(_ count: Int, minimumChunk: Int, alignment: Int = 1) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let wanted = Swift.max(1, Swift.min(width, count / Swift.max(minimumChunk, 1)))
        var size = (count + wanted - 1) / wanted
        size = (size + alignment - 1) / alignment * alignment
        return stride(from: 0, to: count, by: size).map { $0..<Swift.min($0 + size, count) }
    }

    /// Runs `body` once per chunk of `0..<count`, concurrently when there is more than one chunk.
    static func forEachChunk(_ count: Int, minimumChunk: Int = 1 << 16, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
        let ranges = chunks(count, minimumChunk: minimumChunk, alignment: alignment)
        if ranges.count <= 1 {
            ranges.forEach(body)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: ranges.count) { index in box.value(ranges[index]) }
        }
    }

    /// Like `forEachChunk`, collecting one result per chunk in chunk order.
    static func mapChunks<T>(_ count: Int, minimumChunk: Int = 1 << 16, alignment: Int = 1, _ body: (Range<Int>) -> T) -> [T] {
        let ranges = chunks(count, minimumChunk: minimumChunk, alignment: alignment)
        if ranges.count <= 1 { return ranges.map(body) }
        return [T](unsafeUninitializedCapacity: ranges.count) { results, initialized in
            withoutActuallyEscaping(body) { body in
                let box = UncheckedSendable((body, results.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: ranges.count) { index in
                    (box.value.1 + index).initialize(to: box.value.0(ranges[index]))
                }
            }
            initialized = ranges.count
        }
    }
}

/// Carries a closure or pointer into `concurrentPerform`, which demands
/// `@Sendable`. This is safe here because `concurrentPerform` returns only
/// after every iteration has finished (nothing outlives the call), and each
/// iteration works on its own chunk of memory.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
