#ifndef TSYNC_CRABBITMQ_SHIM_H
#define TSYNC_CRABBITMQ_SHIM_H

// librabbitmq 0.11 (Debian 12) installs flat headers; 0.12+ moves them under <rabbitmq-c/...>.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif

#include <sys/time.h>

// amqp_login is variadic, which Swift cannot call: fix it to SASL PLAIN.
static inline amqp_rpc_reply_t tsync_amqp_login_plain(amqp_connection_state_t state,
                                                      const char *vhost, int channel_max,
                                                      int frame_max, int heartbeat,
                                                      const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN,
                      user, password);
}

// Method ids and property flags are cast macros, which Swift does not import: typed copies.
static const amqp_method_number_t tsync_method_basic_deliver = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t tsync_method_basic_return = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t tsync_method_basic_ack = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t tsync_method_basic_nack = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t tsync_method_basic_cancel = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t tsync_method_channel_close = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t tsync_method_channel_close_ok = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const amqp_method_number_t tsync_method_connection_close = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t tsync_method_connection_close_ok = AMQP_CONNECTION_CLOSE_OK_METHOD;
static const amqp_method_number_t tsync_method_connection_blocked = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t tsync_method_connection_unblocked = AMQP_CONNECTION_UNBLOCKED_METHOD;
static const amqp_method_number_t tsync_method_channel_open = AMQP_CHANNEL_OPEN_METHOD;
static const amqp_method_number_t tsync_method_channel_open_ok = AMQP_CHANNEL_OPEN_OK_METHOD;
static const amqp_method_number_t tsync_method_confirm_select = AMQP_CONFIRM_SELECT_METHOD;
static const amqp_method_number_t tsync_method_confirm_select_ok = AMQP_CONFIRM_SELECT_OK_METHOD;
static const amqp_method_number_t tsync_method_queue_declare = AMQP_QUEUE_DECLARE_METHOD;
static const amqp_method_number_t tsync_method_queue_declare_ok = AMQP_QUEUE_DECLARE_OK_METHOD;
static const amqp_method_number_t tsync_method_basic_qos = AMQP_BASIC_QOS_METHOD;
static const amqp_method_number_t tsync_method_basic_qos_ok = AMQP_BASIC_QOS_OK_METHOD;
static const amqp_method_number_t tsync_method_basic_consume = AMQP_BASIC_CONSUME_METHOD;
static const amqp_method_number_t tsync_method_basic_consume_ok = AMQP_BASIC_CONSUME_OK_METHOD;

static const amqp_flags_t tsync_flag_content_type = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t tsync_flag_headers = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t tsync_flag_delivery_mode = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t tsync_flag_correlation_id = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t tsync_flag_message_id = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t tsync_flag_timestamp = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t tsync_flag_type = AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t tsync_flag_app_id = AMQP_BASIC_APP_ID_FLAG;

#endif
