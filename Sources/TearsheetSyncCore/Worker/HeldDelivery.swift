import AMQPClient
import Foundation

/// A delivery as a session holds it until its batch is settled: its pair, decoded as it
/// arrives, and the message as it came only when it is not a pair.
///
/// As the broker sends it, a delivery is about 1.3 KiB on the heap (the body, the headers
/// table, the message id and the other properties), allocated on the connection's thread and
/// held until its batch is settled: a worker holding 200 sessions holds 8,000. Decoded, a pair
/// is its ids and the two values settling may still need of its message. With the connection
/// reading content frame by frame, this took `tearsheet-bench memory` (work, 200 sessions,
/// three runs each) from 77 to 74 MiB; either change alone left it at 77.
struct HeldDelivery: Sendable {
    let deliveryTag: UInt64
    let content: Content

    enum Content: Sendable {
        /// `timestamp` and `changedAtMillis` as the message carried them (for its freshness,
        /// and for a copy published as a dead letter or to the back of the queue).
        case pair(PairMessage, timestamp: UInt64?, changedAtMillis: Int64?)
        /// Not a pair message: kept whole, for its dead letter, with what is wrong with it.
        case malformed(AMQPMessage, reason: String)
    }

    init(_ delivery: AMQPDelivery) {
        deliveryTag = delivery.deliveryTag
        do {
            let pair = try PairMessage.decode(delivery.message)
            content = .pair(pair, timestamp: delivery.message.properties.timestamp, changedAtMillis: PairMessage.changedAtMillis(delivery.message))
        } catch {
            content = .malformed(delivery.message, reason: "malformed message: \(error)")
        }
    }

    /// The message to publish again, as a dead letter or to the back of its queue: as it came
    /// when it is not a pair; else as the publisher writes that pair, with the timestamp and
    /// change it came with (decoding checked that its id, type and session are the contract's;
    /// the body's fields are the same, in the publisher's order).
    var message: AMQPMessage {
        switch content {
        case .pair(let pair, let timestamp, let changedAtMillis): pair.amqpMessage(timestamp: timestamp, changedAtMillis: changedAtMillis)
        case .malformed(let message, _): message
        }
    }

    var messageID: String {
        switch content {
        case .pair(let pair, _, _): pair.messageID
        case .malformed(let message, _): message.properties.messageID ?? "?"
        }
    }

    /// When the Bullhorn change that called for the pair was made, if the message said.
    var changedAt: Date? {
        guard case .pair(_, _, let millis?) = content else { return nil }
        return Date(timeIntervalSince1970: Double(millis) / 1000)
    }
}
