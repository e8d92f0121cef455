import Foundation

/// A value in an AMQP field table (headers, queue arguments). Not `indirect`: tables and arrays
/// already keep their elements on the heap, and boxing every value cost each delivery's headers
/// an allocation apiece.
public enum AMQPFieldValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case timestamp(UInt64)
    case bytes([UInt8])
    case table([String: AMQPFieldValue])
    case array([AMQPFieldValue])
    case void

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    public var description: String {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .bool(let value): return String(value)
        case .double(let value): return String(value)
        case .timestamp(let value): return "@\(value)"
        case .bytes(let value): return "<\(value.count) bytes>"
        case .table(let value): return "{" + value.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .array(let value): return "[" + value.map(\.description).joined(separator: ", ") + "]"
        case .void: return "void"
        }
    }
}

/// The basic properties this project uses.
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    public var messageID: String?
    public var correlationID: String?
    public var type: String?
    public var appID: String?
    /// Seconds since the epoch, as AMQP defines `timestamp`.
    public var timestamp: UInt64?
    /// Persistent (delivery mode 2) messages survive a broker restart.
    public var persistent: Bool
    public var headers: [String: AMQPFieldValue]

    public init(
        contentType: String? = nil, messageID: String? = nil, correlationID: String? = nil,
        type: String? = nil, appID: String? = nil, timestamp: UInt64? = nil, persistent: Bool = true,
        headers: [String: AMQPFieldValue] = [:]
    ) {
        self.contentType = contentType
        self.messageID = messageID
        self.correlationID = correlationID
        self.type = type
        self.appID = appID
        self.timestamp = timestamp
        self.persistent = persistent
        self.headers = headers
    }
}

/// A message as published or delivered.
public struct AMQPMessage: Sendable, Equatable {
    public var properties: AMQPProperties
    public var body: [UInt8]

    public init(body: [UInt8], properties: AMQPProperties = AMQPProperties()) {
        self.body = body
        self.properties = properties
    }
}

/// One message to publish, with where it goes.
public struct AMQPPublish: Sendable {
    public var exchange: String
    public var routingKey: String
    /// Ask the broker to return the message when no queue takes it.
    public var mandatory: Bool
    public var message: AMQPMessage

    public init(exchange: String, routingKey: String, mandatory: Bool = true, message: AMQPMessage) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.mandatory = mandatory
        self.message = message
    }
}

/// What the broker said about one published message.
public enum AMQPPublishOutcome: Sendable, Equatable {
    /// Confirmed: the broker has taken responsibility for it (on disk, for persistent messages
    /// to durable queues).
    case confirmed
    /// Returned because it was `mandatory` and no queue was bound for it (312 NO_ROUTE), then
    /// confirmed: the message is not in any queue.
    case returned(replyCode: UInt16, replyText: String)
    /// Negatively acknowledged: the broker could not take it (e.g. a full `reject-publish` queue).
    case nacked

    public var isConfirmed: Bool { self == .confirmed }
}

/// A message delivered to a consumer; ack, nack or reject it by `deliveryTag` on its channel.
public struct AMQPDelivery: Sendable {
    public let deliveryTag: UInt64
    public let redelivered: Bool
    public let exchange: String
    public let routingKey: String
    public let consumerTag: String
    public let message: AMQPMessage

    public init(deliveryTag: UInt64, redelivered: Bool = false, exchange: String = "", routingKey: String = "", consumerTag: String = "", message: AMQPMessage) {
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.consumerTag = consumerTag
        self.message = message
    }
}

/// What `queue.declare` reports.
public struct AMQPQueueState: Sendable, Equatable {
    public let name: String
    public let messageCount: UInt32
    public let consumerCount: UInt32
}
