import Foundation
import HTTPTypes
import Hummingbird

/// loginInfo, OAuth authorize and token, REST login.
struct AuthRoutes: Sendable {
    let world: BullhornWorld

    private func base(_ request: Request) -> String {
        "http://\(request.head.authority ?? "127.0.0.1")"
    }

    func loginInfo(_ request: Request) -> Response {
        world.count("GET loginInfo")
        guard SimulatorHTTP.queryParameter(request, "username") != nil else {
            return SimulatorHTTP.error(.badRequest, "username is required")
        }
        let base = base(request)
        return SimulatorHTTP.json(.ok, ["oauthUrl": "\(base)/oauth", "restUrl": "\(base)/rest-services", "atsUrl": base])
    }

    func authorize(_ request: Request) -> Response {
        world.count("GET oauth/authorize")
        let parameter = { (name: String) in SimulatorHTTP.queryParameter(request, name) ?? "" }
        guard parameter("response_type") == "code",
            let code = world.auth.authorize(clientID: parameter("client_id"), username: parameter("username"), password: parameter("password"))
        else {
            // Bullhorn answers bad credentials with its login page, status 200.
            return SimulatorHTTP.html(.ok, "<html><body><form id=\"loginForm\">Invalid credentials. Please try again.</form></body></html>")
        }
        let redirect = parameter("redirect_uri").isEmpty ? "\(base(request))/oauth/landing" : parameter("redirect_uri")
        let encodedCode = code.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? code
        return Response(status: .found, headers: [.location: "\(redirect)?code=\(encodedCode)&client_id=\(parameter("client_id"))"])
    }

    func token(_ request: Request) async throws -> Response {
        world.count("POST oauth/token")
        let parameters = try await SimulatorHTTP.parameters(request)
        let clientID = parameters["client_id"] ?? ""
        let secret = parameters["client_secret"] ?? ""
        do {
            let tokens: SimulatedAuth.Tokens
            switch parameters["grant_type"] {
            case "authorization_code":
                tokens = try world.auth.exchange(code: parameters["code"] ?? "", clientID: clientID, clientSecret: secret)
            case "refresh_token":
                tokens = try world.auth.refresh(refreshToken: parameters["refresh_token"] ?? "", clientID: clientID, clientSecret: secret)
            default:
                return SimulatorHTTP.json(.badRequest, ["error": "unsupported_grant_type"])
            }
            return SimulatorHTTP.json(
                .ok,
                ["access_token": tokens.accessToken, "token_type": "Bearer", "expires_in": tokens.expiresIn, "refresh_token": tokens.refreshToken])
        } catch .invalidClient {
            return SimulatorHTTP.json(.unauthorized, ["error": "invalid_client", "error_description": "Invalid client credentials"])
        } catch {
            return SimulatorHTTP.json(.badRequest, ["error": "invalid_grant", "error_description": "Invalid, expired, or revoked grant"])
        }
    }

    func restLogin(_ request: Request) async throws -> Response {
        world.count("POST login")
        let parameters = try await SimulatorHTTP.parameters(request)
        guard parameters["version"] != nil else { return SimulatorHTTP.error(.badRequest, "version is required") }
        let (flake, faults) = world.loginAttempt()
        let latency = faults.latency(of: "POST login")
        if latency > .zero { try await Task.sleep(for: latency) }
        if faults.loginUnavailable {
            return SimulatorHTTP.html(.serviceUnavailable, "<html><body>503 Service Temporarily Unavailable</body></html>")
        }
        if flake {
            return SimulatorHTTP.error(.badRequest, "Invalid or expired OAuth access token.", key: "errors.authentication.invalidOAuthToken")
        }
        let login = world.auth.restLogin(
            accessToken: parameters["access_token"] ?? "", sessionCalls: faults.sessionExpiresAfterCalls, limit: faults.sessionLimit,
            idleTimeout: faults.sessionIdleTimeout)
        let session: String
        switch login {
        case .session(let token):
            session = token
        case .invalidAccessToken:
            return SimulatorHTTP.error(.badRequest, "Invalid or expired OAuth access token.", key: "errors.authentication.invalidOAuthToken")
        case .sessionLimitReached:
            world.served("login refused: session limit")
            return SimulatorHTTP.error(.forbidden, "Maximum number of concurrent API sessions reached.", key: "errors.authentication.maxSessions")
        }
        return SimulatorHTTP.json(
            .ok, ["BhRestToken": session, "restUrl": "\(base(request))/rest-services/\(BullhornSimulatorServer.corpToken)/"])
    }
}
