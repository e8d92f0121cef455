import Crypto
import Foundation

/// A value sealed at rest as JSON with AES-GCM under `TSYNC_SECRET_KEY`. `context` is bound in
/// as associated data: a blob copied onto another row (another integration, or another kind
/// of secret) does not open.
enum SealedJSON {
    /// Sealed under the current key.
    static func seal<Value: Encodable>(_ value: Value, keys: SealingKeys, context: String) throws -> [UInt8] {
        let plaintext = try JSONEncoder().encode(value)
        let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: keys.current), authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw SecretsError("cannot seal the secrets") }
        return Array(combined)
    }

    /// Opened with the current key, else the previous one during a rotation. Throws when
    /// neither key nor the context is the one sealed with, or the blob is damaged.
    static func open<Value: Decodable>(_ sealed: [UInt8], as type: Value.Type, keys: SealingKeys, context: String) throws -> Value {
        try opened(sealed, as: type, keys: keys, context: context).value
    }

    /// What a key rotation's `integration rekey` makes of a blob.
    enum Rekeyed {
        case underCurrentKey
        /// The previous key sealed it: sealed again under the current one.
        case resealed([UInt8])
        case opensWithNeitherKey
    }

    static func rekeyed<Value: Codable>(_ sealed: [UInt8], as type: Value.Type, keys: SealingKeys, context: String) throws -> Rekeyed {
        guard let (value, underCurrentKey) = try? opened(sealed, as: type, keys: keys, context: context) else { return .opensWithNeitherKey }
        return underCurrentKey ? .underCurrentKey : .resealed(try seal(value, keys: keys, context: context))
    }

    private static func opened<Value: Decodable>(
        _ sealed: [UInt8], as type: Value.Type, keys: SealingKeys, context: String
    ) throws -> (value: Value, underCurrentKey: Bool) {
        let box = try AES.GCM.SealedBox(combined: sealed)
        var failure: any Error = CryptoKitError.authenticationFailure
        for key in keys.opening {
            do {
                let plaintext = try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Data(context.utf8))
                return (try JSONDecoder().decode(Value.self, from: plaintext), key == keys.current)
            } catch {
                failure = error
            }
        }
        throw failure
    }
}
