/// What a member does in a round, as the reference's `AveragingMode`.
public enum AveragingMode: String, Sendable, CaseIterable {
    /// Sends its tensors and reduces a share of the parts.
    case node
    /// Sends its tensors but reduces nothing and never accepts connections:
    /// it reads the averages from the responses to its own requests.
    case client
    /// Reduces a share of the parts with weight 0 and sends no tensors.
    case auxiliary

    /// Whether the member contributes its tensors to the average.
    public var sends: Bool { self != .auxiliary }

    /// Whether other members can reach the member to hand it parts.
    public var acceptsConnections: Bool { self != .client }

    /// Parses a mode name; the error lists the valid ones.
    public init(parsing name: String) throws(AveragerError) {
        guard let mode = AveragingMode(rawValue: name) else {
            throw AveragerError(.badRequest, "unknown averaging mode '\(name)'; expected node, client or auxiliary")
        }
        self = mode
    }
}
