import Foundation

extension Duration {
    /// Seconds, for Foundation dates and for reports.
    public var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
