/* imap-date.h - the dates of mail: IMAP date-time (INTERNALDATE, APPEND) and the RFC 5322
 * Date: header, to and from seconds since 1970-01-01 00:00:00 UTC.
 *
 * Pure functions: no time zone database, no locale, no global state (the local time zone
 * never matters), no time_t (so no overflow on 32-bit time_t either). The calendar is the
 * proleptic Gregorian one. A leap second (":60") is accepted and counted as the first
 * second of the next minute. Zone offsets are accepted from -1400 to +1400 (the real
 * extremes are -1200 and +1400), minutes 00-59.
 */
#ifndef MAILFS_IMAP_DATE_H
#define MAILFS_IMAP_DATE_H

#include <stdint.h>

/* Parse an IMAP date-time, without its double quotes (as the response parser returns a
 * quoted string):
 *
 *   date-time      = DQUOTE date-day-fixed "-" date-month "-" date-year
 *                    SP time SP zone DQUOTE                         (RFC 3501 §9)
 *   date-day-fixed = (SP DIGIT) / 2DIGIT
 *   date-month     = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
 *                    "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
 *   date-year      = 4DIGIT
 *   time           = 2DIGIT ":" 2DIGIT ":" 2DIGIT
 *   zone           = ("+" / "-") 4DIGIT
 *
 * e.g. "17-Jul-1996 02:44:25 -0700" or " 7-Jul-1996 02:44:25 -0700". Strict: exactly
 * this shape and nothing after it; the month name in any case (ABNF strings are
 * case-insensitive); the day must exist in that month and year, hours 00-23, minutes
 * 00-59, seconds 00-60, years 0000-9999. On success stores the instant in *utc_r
 * (negative before 1970) and returns 0; otherwise returns -1 with errno EINVAL and leaves
 * *utc_r alone. s must be NUL-terminated. */
int imap_date_parse(const char *s, int64_t *utc_r);

/* Write `utc` as an IMAP date-time in UTC, without quotes, NUL-terminated:
 * "17-Jul-1996 09:44:25 +0000" (the day always as two digits, which date-day-fixed
 * allows and every server reads). Returns 0, or -1 with errno ERANGE if the instant is
 * outside the years 0000-9999 (out is then the empty string). */
int imap_date_format(int64_t utc, char out[27]);

/* Parse the value of a Date: header (unfolded; see mail_header_get()):
 *
 *   date-time   = [ day-of-week "," ] date time [CFWS]          (RFC 5322 §3.3)
 *   date        = day month year
 *   day         = ([FWS] 1*2DIGIT FWS) / obs-day
 *   year        = (FWS 4*DIGIT FWS) / obs-year
 *   time        = time-of-day zone
 *   time-of-day = hour ":" minute [ ":" second ]
 *   zone        = (FWS ( "+" / "-" ) 4DIGIT) / obs-zone
 *   obs-year    = [CFWS] 2*DIGIT [CFWS]                          (§4.3)
 *   obs-zone    = "UT" / "GMT" / "EST" / "EDT" / "CST" / "CDT" / "MST" / "MDT" /
 *                 "PST" / "PDT" / %d65-73 / %d75-90 / %d97-105 / %d107-122
 *
 * Comments ("(CET)", nested, with quoted-pairs) and white space may stand wherever CFWS
 * may. Two-digit years 00-49 are 2000-2049, 50-99 are 1950-1999; three-digit years add
 * 1900 (§4.3); four-digit years must be 1900-9999. The day name, if present, must be one
 * of the seven (any case) but is not checked against the date. Military one-letter zones
 * count as -0000 (UTC), as §4.3 advises. Tolerated beyond the grammar, because real mail
 * does it: "-" instead of white space between day, month and year ("1-Jan-2001"), a
 * one-digit hour, no white space before the zone ("10:00:00+0100"), a missing zone
 * (taken as UTC), a zone name of up to five letters after the numeric zone ("+0100 CET"),
 * any case. Returns 0 and stores the instant in *utc_r, or -1 with errno
 * EINVAL. s must be NUL-terminated. */
int rfc5322_date_parse(const char *s, int64_t *utc_r);

#endif
