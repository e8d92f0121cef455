import Crypto
import Foundation

/// A value sealed at rest as JSON with AES-GCM under `TSYNC_SECRET_KEY`. `context` is bound in
/// as associated data: a blob copied onto another row (another integration, or another kind
/// of secret) does not open.
enum SealedJSON {
    static func seal<Value: Encodable>(_ value: Value, key: [UInt8], context: String) throws -> [UInt8] {
        let plaintext = try JSONEncoder().encode(value)
        let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key), authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw SecretsError("cannot seal the secrets") }
        return Array(combined)
    }

    /// Throws when the key or the context is not the one sealed with, or the blob is damaged.
    static func open<Value: Decodable>(_ sealed: [UInt8], as type: Value.Type, key: [UInt8], context: String) throws -> Value {
        let box = try AES.GCM.SealedBox(combined: sealed)
        let plaintext = try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Data(context.utf8))
        return try JSONDecoder().decode(Value.self, from: plaintext)
    }
}
