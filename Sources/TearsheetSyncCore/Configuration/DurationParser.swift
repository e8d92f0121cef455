/// Durations as operators write them: `90` or `90s`, `5m`, `1h`, `1h30m`.
public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !trimmed.isEmpty else { return nil }
        if let seconds = Int(trimmed) { return seconds >= 0 ? .seconds(seconds) : nil }
        var total = Duration.zero
        var number = ""
        for character in trimmed {
            if character.isNumber {
                number.append(character)
                continue
            }
            guard let value = Int(number) else { return nil }
            switch character {
            case "h": total += .seconds(value * 3600)
            case "m": total += .seconds(value * 60)
            case "s": total += .seconds(value)
            default: return nil
            }
            number = ""
        }
        return number.isEmpty ? total : nil
    }
}

import Foundation
