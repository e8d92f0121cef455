/* The broker's limit for the contract's pair message: raw-limit's thin librabbitmq client
 * (../shared/bench/amqp_limit.c), moving the messages `tearsheet-sync publish` sends instead of
 * raw-limit's bare ones. The difference between the two baselines is what the message's shape
 * costs the broker; the difference between this one and our figure is what our code costs.
 *
 * A message is what the contract asks (shared/contract.md, "Messages"): published to a
 * direct exchange with `mandatory`, routed by the integration id to a durable quorum queue
 * with single active consumer (a session queue), properties message_id, delivery_mode 2,
 * content_type, type, timestamp and the headers session-id and tsync-changed-at, and the
 * pair's JSON body as PairMessage.jsonBody writes it.
 *
 *   pair_limit publish EXCHANGE SESSION N WINDOW     -> prints "publish_msgs_per_s X"
 *   pair_limit consume EXCHANGE SESSION N PREFETCH   -> prints "consume_msgs_per_s X"
 *
 * Both declare the direct exchange EXCHANGE and the queue `tearsheet.session.SESSION` if
 * missing, and bind them: run in a virtual host where `topology.json` is applied, the queue
 * is under the session policy as ours are. The caller deletes the queue. Consume acknowledges
 * with `multiple` every PREFETCH/2 deliveries, as raw-limit does. Host and port from
 * AMQP_HOST, AMQP_PORT (default 127.0.0.1:5672), user and password guest/guest, virtual host
 * AMQP_VHOST (default "/").
 */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die_rpc(amqp_rpc_reply_t r, const char *what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  fprintf(stderr, "%s failed (reply_type %d, lib %s)\n", what, r.reply_type,
          amqp_error_string2(r.library_error));
  exit(1);
}

static amqp_connection_state_t open_conn(void) {
  const char *host = getenv("AMQP_HOST") ? getenv("AMQP_HOST") : "127.0.0.1";
  int port = getenv("AMQP_PORT") ? atoi(getenv("AMQP_PORT")) : 5672;
  const char *vhost = getenv("AMQP_VHOST") ? getenv("AMQP_VHOST") : "/";
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (amqp_socket_open(s, host, port)) { fprintf(stderr, "socket open failed\n"); exit(1); }
  die_rpc(amqp_login(c, vhost, 0, 131072, 60, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
  amqp_channel_open(c, 1);
  die_rpc(amqp_get_rpc_reply(c), "channel.open");
  return c;
}

/* The session's exchange and queue, as `topology apply` and the publisher declare them. */
static void declare_session(amqp_connection_state_t c, const char *exchange, const char *session, const char *queue) {
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
  die_rpc(amqp_get_rpc_reply(c), "exchange.declare");
  amqp_table_entry_t e[2];
  e[0].key = amqp_cstring_bytes("x-queue-type");
  e[0].value.kind = AMQP_FIELD_KIND_UTF8;
  e[0].value.value.bytes = amqp_cstring_bytes("quorum");
  e[1].key = amqp_cstring_bytes("x-single-active-consumer");
  e[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  e[1].value.value.boolean = 1;
  amqp_table_t args = {2, e};
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
  die_rpc(amqp_get_rpc_reply(c), "queue.declare");
  amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes(session), amqp_empty_table);
  die_rpc(amqp_get_rpc_reply(c), "queue.bind");
}

/* Wait until every publish up to `target` is confirmed; a returned message is a failure. */
static void await_confirms(amqp_connection_state_t c, uint64_t *confirmed, uint64_t target) {
  while (*confirmed < target) {
    amqp_frame_t f;
    if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) { fprintf(stderr, "wait_frame failed\n"); exit(1); }
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      amqp_basic_ack_t *a = f.payload.method.decoded;
      *confirmed = a->multiple ? a->delivery_tag : (a->delivery_tag > *confirmed ? a->delivery_tag : *confirmed);
    } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      fprintf(stderr, "nack\n"); exit(1);
    } else if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
      fprintf(stderr, "returned: unroutable\n"); exit(1);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: see header\n"); return 2; }
  const char *mode = argv[1], *exchange = argv[2], *session = argv[3];
  long n = atol(argv[4]);
  char queue[256];
  snprintf(queue, sizeof queue, "tearsheet.session.%s", session);
  amqp_connection_state_t c = open_conn();
  declare_session(c, exchange, session, queue);
  if (!strcmp(mode, "publish")) {
    int window = atoi(argv[5]);
    amqp_confirm_select(c, 1);
    die_rpc(amqp_get_rpc_reply(c), "confirm.select");
    uint64_t confirmed = 0;
    char id[128], body[512];
    amqp_table_entry_t headers[2];
    headers[0].key = amqp_cstring_bytes("session-id");
    headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[0].value.value.bytes = amqp_cstring_bytes(session);
    headers[1].key = amqp_cstring_bytes("tsync-changed-at");
    headers[1].value.kind = AMQP_FIELD_KIND_I64;
    headers[1].value.value.i64 = 1764000000000;
    double t0 = now();
    for (long i = 1; i <= n; i++) {
      long campaign = 1 + i % 10, candidate = 100000 + i / 10;
      amqp_basic_properties_t p;
      p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                 AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG;
      p.content_type = amqp_cstring_bytes("application/json");
      p.headers = (amqp_table_t){2, headers};
      p.delivery_mode = 2;
      snprintf(id, sizeof id, "%s:%ld:%ld", session, campaign, candidate);
      p.message_id = amqp_cstring_bytes(id);
      p.timestamp = (uint64_t)time(NULL);
      p.type = amqp_cstring_bytes("tearsheet.pair.v1");
      int length = snprintf(body, sizeof body,
                            "{\"atsCandidateId\":%ld,\"atsJobId\":%d,\"campaignId\":%ld,\"integrationId\":\"%s\","
                            "\"source\":\"TEARSHEETS\",\"tearsheetId\":%d}",
                            candidate, 2001, campaign, session, 3001);
      amqp_bytes_t b = {(size_t)length, body};
      if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(session), 1, 0, &p, b)) {
        fprintf(stderr, "publish failed\n"); return 1;
      }
      if (i - (long)confirmed >= window) await_confirms(c, &confirmed, i - window / 2);
    }
    await_confirms(c, &confirmed, n);
    double dt = now() - t0;
    printf("publish_msgs_per_s %.0f\n", n / dt);
  } else {
    int prefetch = atoi(argv[5]);
    amqp_basic_qos(c, 1, 0, prefetch, 0);
    die_rpc(amqp_get_rpc_reply(c), "basic.qos");
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_rpc(amqp_get_rpc_reply(c), "basic.consume");
    long got = 0; uint64_t last = 0;
    double t0 = now();
    while (got < n) {
      amqp_envelope_t env;
      amqp_maybe_release_buffers(c);
      amqp_rpc_reply_t r = amqp_consume_message(c, &env, NULL, 0);
      die_rpc(r, "consume");
      got++; last = env.delivery_tag;
      amqp_destroy_envelope(&env);
      if (got % (prefetch / 2 > 0 ? prefetch / 2 : 1) == 0) amqp_basic_ack(c, 1, last, 1);
    }
    amqp_basic_ack(c, 1, last, 1);
    double dt = now() - t0;
    printf("consume_msgs_per_s %.0f\n", n / dt);
  }
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return 0;
}
