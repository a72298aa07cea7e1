/*
 * Control calls the public client API does not wrap; see support.h.
 */
#include "client/client_internal.h"
#include "support.h"

/* imp_client_call_expect() of a call whose answer says nothing more than
 * that it went well: the answer is freed. */
static int call_ok(impulse_client_t *client, Impulse__Envelope *req,
                   Impulse__Envelope__BodyCase ok) {
  Impulse__Envelope *resp = NULL;
  int rc = imp_client_call_expect(client, req, ok, &resp);
  if (rc == 0) impulse__envelope__free_unpacked(resp, NULL);
  return rc;
}

int sup_describe(impulse_client_t *client, const char *name,
                 Impulse__Envelope **resp) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__DescribeRequest d = IMPULSE__DESCRIBE_REQUEST__INIT;
  d.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_DESCRIBE;
  req.describe = &d;
  return imp_client_call_expect(client, &req,
                                IMPULSE__ENVELOPE__BODY_DESCRIBE_OK, resp);
}

int sup_server_info(impulse_client_t *client, Impulse__Envelope **resp) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__ServerInfoRequest si = IMPULSE__SERVER_INFO_REQUEST__INIT;
  req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
  req.server_info = &si;
  return imp_client_call_expect(client, &req,
                                IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK, resp);
}

int sup_ensure_topic(impulse_client_t *client, const char *topic,
                     unsigned partitions, unsigned *got) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *resp = NULL;
  Impulse__EnsureTopicRequest e = IMPULSE__ENSURE_TOPIC_REQUEST__INIT;
  e.topic = (char *)topic;
  e.has_partitions = 1;
  e.partitions = partitions;
  req.body_case = IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC;
  req.ensure_topic = &e;
  int rc = imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC_OK, &resp);
  if (rc != 0) return rc;
  if (got) *got = resp->ensure_topic_ok->partitions;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

int sup_trigger_create(impulse_client_t *client,
                       const Impulse__TriggerSpec *spec) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__TriggerCreateRequest cr = IMPULSE__TRIGGER_CREATE_REQUEST__INIT;
  cr.spec = (Impulse__TriggerSpec *)spec;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE;
  req.trigger_create = &cr;
  return call_ok(client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK);
}

int sup_trigger_describe(impulse_client_t *client, const char *name,
                         Impulse__Envelope **resp) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__TriggerDescribeRequest d = IMPULSE__TRIGGER_DESCRIBE_REQUEST__INIT;
  d.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE;
  req.trigger_describe = &d;
  return imp_client_call_expect(
      client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK, resp);
}

int sup_trigger_delete(impulse_client_t *client, const char *name) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
  Impulse__TriggerDeleteRequest d = IMPULSE__TRIGGER_DELETE_REQUEST__INIT;
  d.name = (char *)name;
  req.body_case = IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE;
  req.trigger_delete = &d;
  return call_ok(client, &req, IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE_OK);
}
