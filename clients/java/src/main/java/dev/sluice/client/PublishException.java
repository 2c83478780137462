package dev.sluice.client;

import io.grpc.Status;

/**
 * Why one event was not published: the gateway's per-event error, or the status of the failed
 * call that carried it (then {@link #field()} is empty).
 */
public final class PublishException extends RuntimeException {
  private final Status.Code code;
  private final String message;
  private final String field;

  public PublishException(Status.Code code, String message, String field) {
    super(code + ": " + message + (field.isEmpty() ? "" : " (field " + field + ")"));
    this.code = code;
    this.message = message;
    this.field = field;
  }

  /** E.g. INVALID_ARGUMENT, PERMISSION_DENIED, UNAVAILABLE. */
  public Status.Code code() {
    return code;
  }

  /** The gateway's message alone (getMessage() adds the code and field). */
  public String message() {
    return message;
  }

  /** The offending field path for INVALID_ARGUMENT, e.g. "data_refreshed.entity_urn"; else "". */
  public String field() {
    return field;
  }
}
