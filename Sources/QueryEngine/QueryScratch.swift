import DNSWire

/// One thread's scratch for the answer path: the wire buffer (DNSWire's `MessageBuffer`: the
/// response storage, name buffers, the pool's picks and random state, the clock) and this
/// thread's signature cache, made on first use. A scratch belongs to one thread (an event loop
/// or a UDP plane thread), so nothing in it needs a lock.
public final class QueryScratch {
    public let buffer: MessageBuffer
    /// The RRSIGs this thread made, by RRset content (see `SignatureCache`).
    var signatureCache: SignatureCache?

    /// - Parameter seed: the weighted draws' random seed (0: a random one).
    public init(seed: UInt64 = 0) { buffer = MessageBuffer(seed: seed) }
}
