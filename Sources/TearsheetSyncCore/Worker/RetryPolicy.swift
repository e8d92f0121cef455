import AMQPClient
import BullhornClient
import CurlHTTP
import PostgresClient

/// What the worker does with a failure, decided by each domain's error type.
enum FailureAction: Equatable {
    /// It may pass (an outage, throttling, a credential an operator will fix): try again in
    /// place, after a pause; the pairs spend nothing.
    case retry
    /// It never will for these pairs (bad data, a broken answer): dead-letter them with it.
    case deadLetter
    /// The session's channel or connection is gone: stop the session; the broker returns the
    /// unacknowledged messages to its queue.
    case endSession

    init(_ error: any Error) {
        switch error {
        case is AMQPError:
            self = .endSession
        case let error as BullhornError:
            // Wrong credentials are an operator's to fix, not the pairs' fault: they wait.
            self = error.isRetriable || error.code == .authentication ? .retry : .deadLetter
        case let error as PostgresError:
            self = error.isRetriable ? .retry : .deadLetter
        case let error as HTTPClientError:
            self = error.isRetriable ? .retry : .deadLetter
        case is ConfigurationError:
            self = .deadLetter
        case is CancellationError:
            self = .endSession
        default:
            // Unknown: keep the pairs and say so in the retries metric rather than lose them.
            self = .retry
        }
    }
}
