/*
 * Control calls the public client API does not wrap; see support.h.
 */
#include "client/client_internal.h"
#include "support.h"

int sup_call(impulse_client_t *client, Impulse__Envelope__BodyCase body_case,
             void *body, Impulse__Envelope__BodyCase expect,
             Impulse__Envelope **resp) {
  Impulse__Envelope req = IMPULSE__ENVELOPE__INIT, *got = NULL;
  int rc = imp_envelope_set_body(&req, body_case, body);
  if (rc != 0) return rc;
  rc = imp_client_call_expect(client, &req, expect, &got);
  if (rc != 0) return rc;
  if (resp != NULL)
    *resp = got;
  else
    impulse__envelope__free_unpacked(got, NULL);
  return 0;
}

int sup_describe(impulse_client_t *client, const char *name,
                 Impulse__Envelope **resp) {
  Impulse__DescribeRequest d = IMPULSE__DESCRIBE_REQUEST__INIT;
  d.name = (char *)name;
  return sup_call(client, IMPULSE__ENVELOPE__BODY_DESCRIBE, &d,
                  IMPULSE__ENVELOPE__BODY_DESCRIBE_OK, resp);
}

int sup_server_info(impulse_client_t *client, Impulse__Envelope **resp) {
  Impulse__ServerInfoRequest si = IMPULSE__SERVER_INFO_REQUEST__INIT;
  return sup_call(client, IMPULSE__ENVELOPE__BODY_SERVER_INFO, &si,
                  IMPULSE__ENVELOPE__BODY_SERVER_INFO_OK, resp);
}

int sup_ensure_topic(impulse_client_t *client, const char *topic,
                     unsigned partitions, unsigned *got) {
  Impulse__Envelope *resp = NULL;
  Impulse__EnsureTopicRequest e = IMPULSE__ENSURE_TOPIC_REQUEST__INIT;
  e.topic = (char *)topic;
  e.has_partitions = 1;
  e.partitions = partitions;
  int rc = sup_call(client, IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC, &e,
                    IMPULSE__ENVELOPE__BODY_ENSURE_TOPIC_OK, &resp);
  if (rc != 0) return rc;
  if (got) *got = resp->ensure_topic_ok->partitions;
  impulse__envelope__free_unpacked(resp, NULL);
  return 0;
}

int sup_trigger_create(impulse_client_t *client,
                       const Impulse__TriggerSpec *spec) {
  Impulse__TriggerCreateRequest cr = IMPULSE__TRIGGER_CREATE_REQUEST__INIT;
  cr.spec = (Impulse__TriggerSpec *)spec;
  return sup_call(client, IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE, &cr,
                  IMPULSE__ENVELOPE__BODY_TRIGGER_CREATE_OK, NULL);
}

int sup_trigger_describe(impulse_client_t *client, const char *name,
                         Impulse__Envelope **resp) {
  Impulse__TriggerDescribeRequest d = IMPULSE__TRIGGER_DESCRIBE_REQUEST__INIT;
  d.name = (char *)name;
  return sup_call(client, IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE, &d,
                  IMPULSE__ENVELOPE__BODY_TRIGGER_DESCRIBE_OK, resp);
}

int sup_trigger_delete(impulse_client_t *client, const char *name) {
  Impulse__TriggerDeleteRequest d = IMPULSE__TRIGGER_DELETE_REQUEST__INIT;
  d.name = (char *)name;
  return sup_call(client, IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE, &d,
                  IMPULSE__ENVELOPE__BODY_TRIGGER_DELETE_OK, NULL);
}
