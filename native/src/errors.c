/* errors.c: the table of error codes, their wire names and default texts. */
#include "internal.h"

static const struct {
    const char *name;
    const char *text;
} errtab[BE_COUNT] = {
    [BE_NONE] = {"NONE", "no error"},
    [BE_LINE_TOO_LONG] = {"LINE_TOO_LONG", "header line too long"},
    [BE_BAD_FRAME] = {"BAD_FRAME", "payload not followed by a line end"},
    [BE_BAD_NUMBER] = {"BAD_NUMBER", "expected 1 to 19 decimal digits"},
    [BE_UNKNOWN_COMMAND] = {"UNKNOWN_COMMAND", "unknown command"},
    [BE_BAD_ARGS] = {"BAD_ARGS", "wrong arguments"},
    [BE_BAD_QUEUE_NAME] = {"BAD_QUEUE_NAME",
                           "queue names are 1 to 255 bytes of printable ASCII or bytes >= 128"},
    [BE_TOO_LARGE] = {"TOO_LARGE", "message larger than the maximum size"},
    [BE_FULL] = {"FULL", "the server's cap on queued bytes would be exceeded"},
    [BE_NOT_SUBSCRIBED] = {"NOT_SUBSCRIBED", "no ON for that queue on this connection"},
    [BE_ALREADY_SUBSCRIBED] = {"ALREADY_SUBSCRIBED", "this connection already has an ON for that queue"},
    [BE_TOO_MANY_CONNECTIONS] = {"TOO_MANY_CONNECTIONS", "too many connections"},
    [BE_SHUTTING_DOWN] = {"SHUTTING_DOWN", "the server is shutting down"},
    [BE_INTERNAL] = {"INTERNAL", "out of memory; nothing was changed"},
    [BE_UNKNOWN_LEASE] = {"UNKNOWN_LEASE", "no lease with that id is held by this connection"},
    [BE_BAD_SCHEDULE] = {"BAD_SCHEDULE", "the schedule expression is not understood"},
    [BE_NO_SCHEDULE] = {"NO_SCHEDULE", "no schedule has that name"},
};

/* berr_name returns the stable wire code of e. */
const char *berr_name(berr e)
{
    return (unsigned)e < BE_COUNT ? errtab[e].name : "INTERNAL";
}

/* berr_text returns the default human text of e. */
const char *berr_text(berr e)
{
    return (unsigned)e < BE_COUNT ? errtab[e].text : "internal error";
}

/* beuss_strerror returns a static English description of a beuss_status. */
const char *beuss_strerror(int status)
{
    switch (status) {
    case BEUSS_OK:
        return "success";
    case BEUSS_ENOMEM:
        return "out of memory";
    case BEUSS_EINVAL:
        return "invalid argument";
    case BEUSS_ENOCONN:
        return "no such connection";
    case BEUSS_EOVERFLOW:
        return "too much input buffered for a paused or waiting connection";
    default:
        return "unknown status";
    }
}
