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

extension Clock {
    /// `2026-12-04T17:03:00Z`: an epoch time as people and logs read it.
    public static func iso8601(_ epoch: Double) -> String {
        var seconds = time_t(epoch.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
