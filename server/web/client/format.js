// Prices, durations and dates as the viewer's locale writes them.
const locale = navigator.language || "en-US";

/** 499, "USD" -> "$4.99" (every currency we sell in has two minor digits). */
export function price(amountCents, currency) {
  return new Intl.NumberFormat(locale, { style: "currency", currency }).format(amountCents / 100);
}

/** An episode's length: 95.2 -> "1:35"; 3725 -> "1:02:05". */
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** A series' total, in words: 95 -> "2 min"; 3725 -> "1 h 2 min". */
export function total(seconds) {
  if (!seconds) return "no episodes yet";
  const minutes = Math.max(1, Math.round(seconds / 60));
  const h = Math.floor(minutes / 60), m = minutes % 60;
  return h ? `${h} h ${m} min` : `${m} min`;
}

/** For screen readers: 95 -> "1 minute 35 seconds". */
export function spoken(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  const m = Math.floor(s / 60), rest = s % 60;
  const parts = [];
  if (m) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  if (rest || !m) parts.push(`${rest} second${rest === 1 ? "" : "s"}`);
  return parts.join(" ");
}

export function date(unixSeconds) {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(unixSeconds * 1000));
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/** A file size: 3_400_000 -> "3.4 MB". */
export function bytes(count) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = count, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return unit ? `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}` : `${count} bytes`;
}
