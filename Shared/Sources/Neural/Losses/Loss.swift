/// Training losses: each returns the loss and its gradient with respect to
/// the prediction, ready to feed into the last layer's `backward`.
public enum Loss {}
