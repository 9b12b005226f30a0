import Shared

/// An error as the CLI's user should read it: for a call to a service, with
/// that service's own message (services never relay an upstream's words, see
/// `HTTPClientError`, but the CLI's user chose the service they call).
func explained(_ error: any Error) -> String {
    (error as? HTTPClientError)?.detailedDescription ?? "\(error)"
}
