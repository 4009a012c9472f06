let isoSecond = Number.NaN;
let isoPrefix = "";

/**
 * `new Date(ms).toISOString()`, with the text up to the seconds made once per second: lines and spans come in time
 * order, and a Date and its formatting per line showed in the shipper's profile (bench/tuning.md). Any time in
 * Date's range; NaN and times outside it are the caller's to refuse.
 */
export function isoString(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    // Everything before the milliseconds: "YYYY-MM-DDTHH:MM:SS." (or "+YYYYYY-…" past year 9999).
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}
