/*
 * geo-sfu: libsrtp 3 API shim over Debian's libsrtp 2 (libsrtp2-dev).
 *
 * mediasoup 3.19 vendors libsrtp 3 (a wrap file that downloads from GitHub).
 * Offline, build-worker.sh builds against Debian's libsrtp 2 instead and
 * installs this file as the `srtp.h` the worker includes (`#include <srtp.h>`).
 *
 * The libsrtp 3 API the worker uses that differs from libsrtp 2:
 *   - srtp_protect / srtp_protect_rtcp take an input buffer, an output buffer
 *     with its capacity (in/out size_t length) and an MKI index, instead of
 *     protecting in place with an `int *` length;
 *   - srtp_unprotect / srtp_unprotect_rtcp take separate in/out buffers and
 *     size_t lengths;
 *   - srtp_remove_stream was renamed srtp_stream_remove;
 *   - error codes srtp_err_status_buffer_small and srtp_err_status_cryptex_err
 *     were added (they are only used as map keys for error strings here).
 *
 * Everything else the worker calls (srtp_init, srtp_shutdown, srtp_create,
 * srtp_dealloc, srtp_install_event_handler, srtp_crypto_policy_set_*,
 * srtp_get_version_string, srtp_policy_t fields) has the same shape in
 * libsrtp 2.4+.
 *
 * The libsrtp 2 functions are declared by <srtp2/srtp.h> before the macros
 * below are defined, so the macros only rename the worker's call sites.
 */
#ifndef GEO_SFU_SRTP3_COMPAT_H
#define GEO_SFU_SRTP3_COMPAT_H

#include <srtp2/srtp.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes added in libsrtp 3 (libsrtp 2 stops at pkt_idx_adv = 27). */
#define srtp_err_status_buffer_small ((srtp_err_status_t)28)
#define srtp_err_status_cryptex_err ((srtp_err_status_t)29)

/*
 * libsrtp 2 protects in place and appends up to SRTP_MAX_TRAILER_LEN bytes,
 * so the plain packet is first copied into the output buffer, which must have
 * room for the packet plus the trailer.
 */
static inline srtp_err_status_t geo_sfu_srtp3_protect_common(
  srtp_t ctx,
  const uint8_t *in,
  size_t in_len,
  uint8_t *out,
  size_t *out_len,
  size_t mki_index,
  int rtcp)
{
  if (in == NULL || out == NULL || out_len == NULL)
    return srtp_err_status_bad_param;
  if (in_len > (size_t)INT_MAX - SRTP_MAX_TRAILER_LEN)
    return srtp_err_status_bad_param;
  if (*out_len < in_len + SRTP_MAX_TRAILER_LEN)
    return srtp_err_status_buffer_small;
  /* No MKI is configured by the worker; libsrtp 2 without MKI ignores it. */
  if (mki_index != 0)
    return srtp_err_status_bad_mki;

  if (out != in)
    memmove(out, in, in_len);

  int len = (int)in_len;
  srtp_err_status_t err =
    rtcp ? srtp_protect_rtcp(ctx, out, &len) : srtp_protect(ctx, out, &len);

  if (err == srtp_err_status_ok)
    *out_len = (size_t)len;

  return err;
}

static inline srtp_err_status_t geo_sfu_srtp3_unprotect_common(
  srtp_t ctx, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len, int rtcp)
{
  if (in == NULL || out == NULL || out_len == NULL)
    return srtp_err_status_bad_param;
  if (in_len > (size_t)INT_MAX)
    return srtp_err_status_bad_param;
  if (out != in)
  {
    if (*out_len < in_len)
      return srtp_err_status_buffer_small;
    memmove(out, in, in_len);
  }

  int len = (int)in_len;
  srtp_err_status_t err =
    rtcp ? srtp_unprotect_rtcp(ctx, out, &len) : srtp_unprotect(ctx, out, &len);

  if (err == srtp_err_status_ok)
    *out_len = (size_t)len;

  return err;
}

static inline srtp_err_status_t geo_sfu_srtp3_protect(
  srtp_t ctx, const uint8_t *rtp, size_t rtp_len, uint8_t *srtp, size_t *srtp_len, size_t mki_index)
{
  return geo_sfu_srtp3_protect_common(ctx, rtp, rtp_len, srtp, srtp_len, mki_index, 0);
}

static inline srtp_err_status_t geo_sfu_srtp3_unprotect(
  srtp_t ctx, const uint8_t *srtp, size_t srtp_len, uint8_t *rtp, size_t *rtp_len)
{
  return geo_sfu_srtp3_unprotect_common(ctx, srtp, srtp_len, rtp, rtp_len, 0);
}

static inline srtp_err_status_t geo_sfu_srtp3_protect_rtcp(
  srtp_t ctx, const uint8_t *rtcp, size_t rtcp_len, uint8_t *srtcp, size_t *srtcp_len, size_t mki_index)
{
  return geo_sfu_srtp3_protect_common(ctx, rtcp, rtcp_len, srtcp, srtcp_len, mki_index, 1);
}

static inline srtp_err_status_t geo_sfu_srtp3_unprotect_rtcp(
  srtp_t ctx, const uint8_t *srtcp, size_t srtcp_len, uint8_t *rtcp, size_t *rtcp_len)
{
  return geo_sfu_srtp3_unprotect_common(ctx, srtcp, srtcp_len, rtcp, rtcp_len, 1);
}

/* libsrtp 3 renamed srtp_remove_stream; the SSRC is in network byte order in both. */
static inline srtp_err_status_t geo_sfu_srtp3_stream_remove(srtp_t session, uint32_t ssrc)
{
  return srtp_remove_stream(session, ssrc);
}

#ifdef __cplusplus
}
#endif

#define srtp_protect geo_sfu_srtp3_protect
#define srtp_unprotect geo_sfu_srtp3_unprotect
#define srtp_protect_rtcp geo_sfu_srtp3_protect_rtcp
#define srtp_unprotect_rtcp geo_sfu_srtp3_unprotect_rtcp
#define srtp_stream_remove geo_sfu_srtp3_stream_remove

#endif /* GEO_SFU_SRTP3_COMPAT_H */
