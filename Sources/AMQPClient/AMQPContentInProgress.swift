import CRabbitMQ

/// A delivered or returned message whose content frames (a header, then body frames) are
/// still arriving on its channel.
///
/// The connection's thread assembles them as they are read, one frame at a time, rather than
/// with `amqp_read_message`: that call waits for its own channel's frames and queues every
/// other channel's meanwhile, and a queued frame keeps its channel's memory pool from being
/// recycled until that channel's queue is empty. Read frame by frame, a frame is copied out
/// and its pool recycled before the next one is read. Measured with the other two changes it
/// needed (sessions holding deliveries decoded, calls waiting in our loop): a worker holding
/// 200 sessions went from 77 to 70 MiB (`tearsheet-bench memory --runs 3`); alone it moved
/// nothing, since the calls' waits still queued the same frames.
struct AMQPContentInProgress {
    enum Kind {
        case delivery(consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
        case returned(replyCode: UInt16, replyText: String)
    }

    let kind: Kind
    private(set) var properties: AMQPProperties?
    private var bodySize = 0
    private var body: [UInt8] = []

    init(_ kind: Kind) {
        self.kind = kind
    }

    /// Takes the content header; the message when it has no body.
    mutating func header(_ properties: AMQPProperties, bodySize: UInt64) -> AMQPMessage? {
        self.properties = properties
        self.bodySize = Int(bodySize)
        body.reserveCapacity(self.bodySize)
        return self.bodySize == 0 ? AMQPMessage(body: [], properties: properties) : nil
    }

    /// Takes a body frame; the message once the body is whole. Nil until then, or when the
    /// header has not come (the caller treats that as the protocol error it is).
    mutating func bodyFragment(_ fragment: amqp_bytes_t) -> AMQPMessage? {
        guard let properties else { return nil }
        if fragment.len > 0, let bytes = fragment.bytes {
            body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: fragment.len))
        }
        return body.count >= bodySize ? AMQPMessage(body: body, properties: properties) : nil
    }
}
