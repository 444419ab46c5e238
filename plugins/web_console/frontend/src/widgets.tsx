// Small pieces every view uses.
import type { ComponentChildren } from "preact";

export function ErrorLine({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

/** A progress bar that says how far: a fraction shows a bar and a percentage, null an indeterminate bar. */
export function Progress({ value, label }: { value: number | null | undefined; label: string }) {
  return (
    <span class="progress">
      <progress aria-label={label} max={1} value={value ?? undefined} />
      <span class="small">{value === null || value === undefined ? label : `${Math.round(value * 100)}%`}</span>
    </span>
  );
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge ${kind}`}>{children}</span>;
}
