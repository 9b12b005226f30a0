#if canImport(Glibc)
import Glibc
#endif

/// The base URL a service tells others to reach it at. Other services may run
/// on other machines, in other containers or network namespaces, so the URL
/// must name an address they can reach, never a loopback or wildcard one
/// that only means something on this host.
public enum AnnounceAddress {
    /// `--announce-address` when given; else `SCHEME://HOST:PORT`, where a
    /// wildcard host (`0.0.0.0`, listening on every interface) is replaced by
    /// this machine's first non-loopback IPv4 address (a container's or pod's
    /// own address). A machine with several such addresses should name one
    /// with `--announce-address`.
    public static func url(announce: String?, host: String, port: Int, scheme: String = "http") -> String {
        if let announce, !announce.isEmpty { return announce }
        let reachable = host == "0.0.0.0" ? (firstExternalIPv4() ?? "127.0.0.1") : host
        return "\(scheme)://\(reachable):\(port)"
    }

    /// The first IPv4 address of an interface that is up and not a loopback, in the kernel's order.
    public static func firstExternalIPv4() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            let flags = Int32(current.pointee.ifa_flags)
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let converted = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { socketAddress in
                var raw = socketAddress.pointee.sin_addr
                return inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil
            }
            if converted { return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        return nil
    }
}
