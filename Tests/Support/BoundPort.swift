import Foundation

/// A TCP port on 127.0.0.1 that is bound but does not listen, held while the
/// value lives: connections to it are refused, and no other test's server can
/// take it meanwhile (a stopped server's port can go to another one at once).
public final class BoundPort: Sendable {
    public let port: Int
    private let descriptor: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound else {
            if fd >= 0 { close(fd) }
            throw ServiceProcessError("cannot bind a port on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}

/// A TCP port nothing listens on right now (the OS's pick, released).
public func freePort() throws -> Int { try BoundPort().port }
