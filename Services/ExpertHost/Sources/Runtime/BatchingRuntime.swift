#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Shared
import Synchronization

/// Runs experts' computations on a dedicated thread, batching concurrent
/// requests to the same pool, as the reference's task pools and runtime do:
/// requests wait in their pool; the runtime takes the pool whose oldest request
/// is oldest, concatenates as many waiting requests as fit in `maxBatchSize`
/// along the batch axis, runs one computation, and splits the results back.
/// While one batch computes, the next one fills up, so batching needs no timer.
///
/// One runtime thread: OpenBLAS already spreads each batch over every core,
/// and one thread keeps every expert's optimizer steps in order.
public final class BatchingRuntime: Sendable {
    /// A pool's computation over a whole batch: inputs in, outputs out, each batch-first.
    public typealias Compute = @Sendable ([Tensor]) throws -> [Tensor]

    /// Identifies a pool created by `makePool`.
    public struct Pool: Hashable, Sendable {
        let index: Int
        /// Label for metrics and errors, e.g. `ffn.0.1/backward`.
        public let name: String
    }

    public let maxBatchSize: Int
    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let metrics: Metrics?

    private struct State {
        var names: [String] = []
        var computes: [Compute] = []
        var merges: [Bool] = []
        var queues: [[Request]] = []
        var stopped = false
    }

    /// - Parameter metrics: receives batch sizes, queue waits and compute times when given.
    public init(maxBatchSize: Int, metrics: Metrics? = nil) {
        self.maxBatchSize = maxBatchSize
        self.metrics = metrics
        metrics?.declare("runtime_batch_size", .histogram, help: "Samples per executed batch, by pool.",
                         buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096])
        metrics?.declare("runtime_queue_seconds", .histogram, help: "Time requests waited before their batch ran, by pool.")
        metrics?.declare("runtime_compute_seconds", .histogram, help: "Compute time per batch, by pool.")
        metrics?.declare("runtime_samples_total", .counter, help: "Samples computed, by pool.")
        var thread = pthread_t()
        let runtime = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { argument in
            Unmanaged<BatchingRuntime>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, runtime)
        pthread_detach(thread)
    }

    /// Adds a pool; its computation runs only on the runtime thread.
    /// - Parameter merges: false runs each request as a batch of its own (for
    ///   computations with a side effect per request, such as a training step).
    public func makePool(name: String, merges: Bool = true, compute: @escaping Compute) -> Pool {
        state.withLock { state in
            state.names.append(name)
            state.computes.append(compute)
            state.merges.append(merges)
            state.queues.append([])
            return Pool(index: state.computes.count - 1, name: name)
        }
    }

    /// Queues one request's inputs (batch-first, all with the same batch size)
    /// and waits for its share of the batch's outputs.
    /// - Throws: `HTTPError` 413 for a batch above `maxBatchSize`; the batch's error if its computation failed.
    public func submit(_ inputs: [Tensor], to pool: Pool) async throws -> [Tensor] {
        let batchSize = inputs.first?.shape.first ?? 0
        guard batchSize <= maxBatchSize else {
            throw HTTPError.payloadTooLarge("a batch of \(batchSize) samples exceeds this host's --max-batch-size \(maxBatchSize)")
        }
        return try await withCheckedThrowingContinuation { continuation in
            let request = Request(inputs: inputs, batchSize: batchSize, continuation: continuation)
            let accepted = state.withLock { state in
                guard !state.stopped else { return false }
                state.queues[pool.index].append(request)
                return true
            }
            guard accepted else {
                return continuation.resume(throwing: HTTPError.serviceUnavailable("the expert host is shutting down"))
            }
            wakeUp.signal()
        }
    }

    /// Fails what is still queued and ends the runtime thread after the batch in progress.
    public func shutdown() {
        let abandoned = state.withLock { state in
            state.stopped = true
            defer { state.queues = state.queues.map { _ in [] } }
            return state.queues.flatMap { $0 }
        }
        for request in abandoned {
            request.continuation.resume(throwing: HTTPError.serviceUnavailable("the expert host is shutting down"))
        }
        wakeUp.signal()
    }

    // MARK: - The runtime thread

    private func run() {
        while true {
            wakeUp.wait()
            while let (pool, compute, batch) = nextBatch() {
                execute(batch, pool: pool, compute: compute)
            }
            if state.withLock({ $0.stopped }) { return }
        }
    }

    /// Takes the requests of the pool whose oldest request is oldest, up to `maxBatchSize` samples
    /// (only the oldest where the pool does not merge).
    private func nextBatch() -> (String, Compute, [Request])? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            let candidates = state.queues.indices.filter { !state.queues[$0].isEmpty }
            guard let index = candidates.min(by: { state.queues[$0][0].enqueued < state.queues[$1][0].enqueued }) else { return nil }
            var batch: [Request] = []
            var samples = 0
            while let next = state.queues[index].first, samples + next.batchSize <= maxBatchSize, batch.isEmpty || state.merges[index] {
                batch.append(state.queues[index].removeFirst())
                samples += next.batchSize
            }
            return (state.names[index], state.computes[index], batch)
        }
    }

    private func execute(_ batch: [Request], pool: String, compute: Compute) {
        let started = Clock.now
        let sizes = batch.map(\.batchSize)
        let samples = sizes.reduce(0, +)
        let labels = ["pool": pool]
        for request in batch { metrics?.observe("runtime_queue_seconds", labels: labels, started - request.enqueued) }
        do {
            let inputs = try batch.count == 1 ? batch[0].inputs : batch[0].inputs.indices.map { position in
                try Tensor.concatenate(batch.map { $0.inputs[position] })
            }
            let outputs = try compute(inputs)
            let pieces = try outputs.map { output in
                batch.count == 1 ? [output] : try output.split(sizes: sizes)
            }
            for (position, request) in batch.enumerated() {
                request.continuation.resume(returning: pieces.map { $0[position] })
            }
        } catch {
            let failure = error as? HTTPError ?? HTTPError.unprocessable("the expert failed on this batch of \(samples) samples: \(error)")
            for request in batch { request.continuation.resume(throwing: failure) }
        }
        metrics?.observe("runtime_batch_size", labels: labels, Double(samples))
        metrics?.observe("runtime_compute_seconds", labels: labels, Clock.now - started)
        metrics?.increment("runtime_samples_total", labels: labels, by: Double(samples))
    }
}

/// One request waiting in a pool.
private struct Request: Sendable {
    let inputs: [Tensor]
    let batchSize: Int
    let continuation: CheckedContinuation<[Tensor], any Error>
    let enqueued = Clock.now
}
