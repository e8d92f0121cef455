import CRabbitMQ
import Foundation

/// Owns C copies of Swift values for the duration of one librabbitmq call.
///
/// `amqp_cstring_bytes` on a Swift string would keep a pointer to a temporary buffer; every
/// byte that librabbitmq reads is copied here instead and freed when the arena goes away (or
/// is `reset` for the next call). The copies are carved out of 4 KiB blocks: a published
/// message's dozen strings cost no allocation at all once the arena is warm, where a
/// `malloc` each was a measurable share of the publisher's time.
final class CArena {
    private var blocks: [(start: UnsafeMutableRawPointer, size: Int)] = []
    /// Bytes used of the last block.
    private var used = 0
    private static let blockSize = 4096

    deinit {
        blocks.forEach { free($0.start) }
    }

    /// Forgets every copy (their memory is reused): call once librabbitmq is done with them.
    func reset() {
        if blocks.count > 1 {
            blocks[1...].forEach { free($0.start) }
            blocks.removeSubrange(1...)
        }
        used = 0
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { bytes($0) }
    }

    func bytes(_ value: [UInt8]) -> amqp_bytes_t {
        value.withUnsafeBufferPointer { bytes($0) }
    }

    func bytes(_ value: UnsafeBufferPointer<UInt8>) -> amqp_bytes_t {
        guard let base = value.baseAddress, !value.isEmpty else { return amqp_bytes_t(len: 0, bytes: nil) }
        let memory = allocate(value.count, alignment: 1)
        memory.copyMemory(from: base, byteCount: value.count)
        return amqp_bytes_t(len: value.count, bytes: memory)
    }

    func cString(_ string: String) -> UnsafePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let memory = allocate(utf8.count + 1, alignment: 1)
            if let base = utf8.baseAddress { memory.copyMemory(from: base, byteCount: utf8.count) }
            memory.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            return UnsafePointer(memory.assumingMemoryBound(to: CChar.self))
        }
    }

    private func allocate(_ count: Int, alignment: Int = 16) -> UnsafeMutableRawPointer {
        let offset = (used + alignment - 1) & ~(alignment - 1)
        if let last = blocks.last, offset + count <= last.size {
            used = offset + count
            return last.start + offset
        }
        let size = max(Self.blockSize, count)
        let block = malloc(size)!
        blocks.append((block, size))
        used = count
        return block
    }

    func table(_ values: [String: AMQPFieldValue]) -> amqp_table_t {
        guard !values.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * values.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: values.count)
        // Sorted keys make the wire form deterministic.
        for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: field(value))
        }
        return amqp_table_t(num_entries: Int32(values.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = kind(AMQP_FIELD_KIND_UTF8)
            field.value.bytes = bytes(string)
        case .int(let int):
            field.kind = kind(AMQP_FIELD_KIND_I64)
            field.value.i64 = int
        case .bool(let bool):
            field.kind = kind(AMQP_FIELD_KIND_BOOLEAN)
            field.value.boolean = bool ? 1 : 0
        case .double(let double):
            field.kind = kind(AMQP_FIELD_KIND_F64)
            field.value.f64 = double
        case .timestamp(let seconds):
            field.kind = kind(AMQP_FIELD_KIND_TIMESTAMP)
            field.value.u64 = seconds
        case .bytes(let raw):
            field.kind = kind(AMQP_FIELD_KIND_BYTES)
            field.value.bytes = bytes(raw)
        case .table(let nested):
            field.kind = kind(AMQP_FIELD_KIND_TABLE)
            field.value.table = table(nested)
        case .array(let elements):
            field.kind = kind(AMQP_FIELD_KIND_ARRAY)
            let entries = allocate(MemoryLayout<amqp_field_value_t>.stride * max(elements.count, 1))
                .bindMemory(to: amqp_field_value_t.self, capacity: max(elements.count, 1))
            for (index, element) in elements.enumerated() { entries[index] = self.field(element) }
            field.value.array = amqp_array_t(num_entries: Int32(elements.count), entries: entries)
        case .void:
            field.kind = kind(AMQP_FIELD_KIND_VOID)
        }
        return field
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: amqp_flags_t = tsync_flag_delivery_mode
        c.delivery_mode = properties.persistent ? 2 : 1
        if let value = properties.contentType {
            flags |= tsync_flag_content_type
            c.content_type = bytes(value)
        }
        if let value = properties.messageID {
            flags |= tsync_flag_message_id
            c.message_id = bytes(value)
        }
        if let value = properties.correlationID {
            flags |= tsync_flag_correlation_id
            c.correlation_id = bytes(value)
        }
        if let value = properties.type {
            flags |= tsync_flag_type
            c.type = bytes(value)
        }
        if let value = properties.appID {
            flags |= tsync_flag_app_id
            c.app_id = bytes(value)
        }
        if let value = properties.timestamp {
            flags |= tsync_flag_timestamp
            c.timestamp = value
        }
        if !properties.headers.isEmpty {
            flags |= tsync_flag_headers
            c.headers = table(properties.headers)
        }
        c._flags = flags
        return c
    }
}

private func kind(_ kind: amqp_field_value_kind_t) -> UInt8 {
    UInt8(kind.rawValue)
}

/// Copies of C values into Swift, made before librabbitmq releases its buffers.
enum CDecode {
    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let pointer = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: bytes.len), as: UTF8.self)
    }

    static func array(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let pointer = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: bytes.len))
    }

    static func table(_ table: amqp_table_t) -> [String: AMQPFieldValue] {
        var strings = RecurringStrings(capacity: 0)
        return self.table(table, strings: &strings)
    }

    /// A table whose names and string values recur (message headers) take them from `strings`.
    static func table(_ table: amqp_table_t, strings: inout RecurringStrings) -> [String: AMQPFieldValue] {
        var result: [String: AMQPFieldValue] = [:]
        guard let entries = table.entries else { return result }
        result.reserveCapacity(Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            let value = entries[index].value
            result[strings.string(entries[index].key)] =
                UInt32(value.kind) == AMQP_FIELD_KIND_UTF8.rawValue ? .string(strings.string(value.value.bytes)) : field(value)
        }
        return result
    }

    static func field(_ field: amqp_field_value_t) -> AMQPFieldValue {
        switch UInt32(field.kind) {
        case AMQP_FIELD_KIND_UTF8.rawValue: return .string(string(field.value.bytes))
        case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(array(field.value.bytes))
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(field.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: return .int(Int64(field.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: return .int(Int64(field.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: return .int(Int64(field.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: return .int(Int64(field.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: return .int(Int64(field.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: return .int(Int64(field.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: return .int(field.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: return .int(Int64(truncatingIfNeeded: field.value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: return .double(Double(field.value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: return .double(field.value.f64)
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue: return .timestamp(field.value.u64)
        case AMQP_FIELD_KIND_TABLE.rawValue: return .table(table(field.value.table))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            guard let entries = field.value.array.entries else { return .array([]) }
            return .array((0..<Int(field.value.array.num_entries)).map { self.field(entries[$0]) })
        default: return .void
        }
    }

    /// The properties of a message; the ones that recur across messages (all but the message and
    /// correlation ids) come from `strings`.
    static func properties(_ c: amqp_basic_properties_t, strings: inout RecurringStrings) -> AMQPProperties {
        let flags = c._flags
        func has(_ flag: amqp_flags_t) -> Bool { flags & flag != 0 }
        return AMQPProperties(
            contentType: has(tsync_flag_content_type) ? strings.string(c.content_type) : nil,
            messageID: has(tsync_flag_message_id) ? string(c.message_id) : nil,
            correlationID: has(tsync_flag_correlation_id) ? string(c.correlation_id) : nil,
            type: has(tsync_flag_type) ? strings.string(c.type) : nil,
            appID: has(tsync_flag_app_id) ? strings.string(c.app_id) : nil,
            timestamp: has(tsync_flag_timestamp) ? c.timestamp : nil,
            persistent: has(tsync_flag_delivery_mode) && c.delivery_mode == 2,
            headers: has(tsync_flag_headers) ? table(c.headers, strings: &strings) : [:])
    }
}
