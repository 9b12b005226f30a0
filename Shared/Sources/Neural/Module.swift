/// Something that owns named trainable tensors: a layer, a model, an expert.
///
/// A module lists its parameters through one visitor, so an optimizer can
/// update them in place and a checkpoint can save and restore them, without
/// either knowing the module's structure. Names follow PyTorch's
/// `state_dict` convention (`"ffn.weight"`, `"layer_norm.bias"`): a
/// container visits its children with a `prefix` ending in a dot.
///
/// Layers return their parameter gradients as a value of their own type, so
/// gradients carry exactly the parameters' names:
/// `gradients.parametersByName["ffn.weight"]`.
public protocol Module: Sendable {
    /// Calls `visit` once per parameter, in a fixed order, with the
    /// parameter's full name (`prefix` + its own name) and its storage.
    ///
    /// A visitor may change values in place but must keep every shape (the
    /// optimizer and checkpoint code check shapes before they write). A
    /// module that is a class may hold a lock while it visits: the visitor
    /// must not call back into the module.
    mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E)
}

extension Module {
    /// Every parameter with its name, in visiting order.
    public var parameters: [(name: String, tensor: Tensor)] {
        var copy = self
        var result: [(name: String, tensor: Tensor)] = []
        copy.visitParameters(prefix: "") { name, tensor in result.append((name, tensor)) }
        return result
    }

    /// Every parameter by name.
    public var parametersByName: [String: Tensor] {
        Dictionary(parameters.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    }

    /// The total number of scalars in all parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }
}
