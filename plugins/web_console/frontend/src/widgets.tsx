// Small pieces every view uses.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { accessToken, fetchBlob } from "./api";

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

// Blob URLs of API images fetched with the token, kept for the page's life up to BLOBS_KEPT (the oldest revoked
// first): a tile that re-renders, a page loaded again or the viewer opened twice does not fetch the file again.
const BLOBS_KEPT = 400;
const blobs = new Map<string, Promise<string>>();

function blobUrl(src: string): Promise<string> {
  let found = blobs.get(src);
  if (found) {
    blobs.delete(src);
    blobs.set(src, found); // most recently used last
    return found;
  }
  found = fetchBlob(src).then((blob) => URL.createObjectURL(blob));
  found.catch(() => blobs.delete(src));
  blobs.set(src, found);
  while (blobs.size > BLOBS_KEPT) {
    const [oldest, url] = blobs.entries().next().value as [string, Promise<string>];
    blobs.delete(oldest);
    void url.then((u) => URL.revokeObjectURL(u), () => undefined);
  }
  return found;
}

/** An image of the API. Without a token it is a plain `<img src>`; with one, the browser cannot put a header on an
 * `<img>` request and the token must never go in a URL, so the file is fetched with the header (when it comes into
 * view, for `lazy` ones) and shown from a blob URL. */
export function ApiImage(props: { src: string; alt: string; width?: number; height?: number; lazy?: boolean; class?: string }) {
  const token = accessToken();
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  const element = useRef<HTMLImageElement>(null);
  useEffect(() => {
    if (token === null) return;
    let live = true;
    const load = () => {
      blobUrl(props.src).then(
        (u) => live && setUrl(u),
        () => live && setFailed(true),
      );
    };
    let observer: IntersectionObserver | null = null;
    if (props.lazy && element.current) {
      observer = new IntersectionObserver(
        (entries) => {
          if (entries.some((e) => e.isIntersecting)) {
            observer?.disconnect();
            load();
          }
        },
        { rootMargin: "200px" },
      );
      observer.observe(element.current);
    } else {
      load();
    }
    return () => {
      live = false;
      observer?.disconnect();
    };
  }, [props.src, token, props.lazy]);
  if (token === null) {
    return <img class={props.class} src={props.src} alt={props.alt} width={props.width} height={props.height} loading={props.lazy ? "lazy" : undefined} />;
  }
  return (
    <img
      ref={element}
      class={props.class}
      src={url ?? undefined}
      alt={props.alt}
      width={props.width}
      height={props.height}
      data-loading={url === null && !failed ? "true" : undefined}
      data-failed={failed ? "true" : undefined}
    />
  );
}

/** Save a file of the API under `name`, fetched with the token's header (an `<a href download>` could not send it). */
export async function download(path: string, name: string): Promise<void> {
  const url = URL.createObjectURL(await fetchBlob(path));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
