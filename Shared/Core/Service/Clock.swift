#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock and monotonic time in seconds, as doubles (the DHT's expiration
/// times are seconds since the epoch, like the reference's).
public enum Clock {
    /// Monotonic seconds, for measuring durations and deadlines.
    public static var now: Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Seconds since the Unix epoch.
    public static var epoch: Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
