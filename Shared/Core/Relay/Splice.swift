#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs `body` on a new detached thread (pthreads: SharedCore has no
/// Foundation). For blocking socket work that must not hold a task's thread.
public func detachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { context in
        let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    if status == 0 {
        pthread_detach(thread)
    } else {
        Unmanaged<Box>.fromOpaque(context).release()
    }
}

/// A token bucket: at most `bytesPerSecond` on average, bursts of one second.
public final class RateLimiter: Sendable {
    private let bytesPerSecond: Double
    private let state: Mutex<(tokens: Double, time: Double)>

    public init(bytesPerSecond: Double) {
        self.bytesPerSecond = bytesPerSecond
        state = Mutex((bytesPerSecond, Clock.now))
    }

    /// Blocks the calling thread until `bytes` may pass.
    public func wait(for bytes: Int) {
        let delay = state.withLock { state -> Double in
            let now = Clock.now
            state.tokens = min(bytesPerSecond, state.tokens + (now - state.time) * bytesPerSecond)
            state.time = now
            state.tokens -= Double(bytes)
            return state.tokens < 0 ? -state.tokens / bytesPerSecond : 0
        }
        if delay > 0 { usleep(UInt32(min(delay, 10) * 1e6)) }
    }
}

/// Two TCP connections joined: what arrives on one leaves on the other, both
/// ways, through `limiter`, until both ends have closed (or one failed, or
/// `stop` was called); then both sockets are closed. The bytes are forwarded
/// as they are: a TLS session across a splice stays end to end.
public final class Splice: Sendable {
    private let first: Int32
    private let second: Int32
    private let limiter: RateLimiter?
    private let state = Mutex((stopped: false, pumpsLeft: 2))

    /// Starts forwarding on two threads of its own.
    @discardableResult
    public static func start(_ first: Int32, _ second: Int32, limiter: RateLimiter?) -> Splice {
        let splice = Splice(first, second, limiter: limiter)
        detachedThread { splice.pump(from: first, to: second) }
        detachedThread { splice.pump(from: second, to: first) }
        return splice
    }

    private init(_ first: Int32, _ second: Int32, limiter: RateLimiter?) {
        self.first = first
        self.second = second
        self.limiter = limiter
        RawSocket.setNoDelay(first)
        RawSocket.setNoDelay(second)
    }

    public var isStopped: Bool { state.withLock { $0.stopped } }

    /// Ends forwarding both ways.
    public func stop() {
        state.withLock { $0.stopped = true }
        RawSocket.shutdownBoth(first)
        RawSocket.shutdownBoth(second)
    }

    private func pump(from input: Int32, to output: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !isStopped {
            guard RawSocket.waitReadable(input, milliseconds: 200) else { continue }
            let count = recv(input, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR || errno == EAGAIN { continue }
            guard count > 0 else {
                if count < 0 { stop() } else { RawSocket.shutdownWrite(output) }
                break
            }
            limiter?.wait(for: count)
            guard RawSocket.sendAll(output, Array(buffer[..<count]), while: { !self.isStopped }) else {
                stop()
                break
            }
        }
        let last = state.withLock { state -> Bool in
            state.pumpsLeft -= 1
            return state.pumpsLeft == 0
        }
        if last {
            close(first)
            close(second)
        }
    }
}
