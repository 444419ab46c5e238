// Gallery: newest first, pages of PAGE images fetched as the end of the grid scrolls into view
// (offset/limit), filters, star, delete, and a viewer with metadata, graph, workflow and download.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ImageCategory, ImageDTO, ImageDTOPage, V1, errorText, get, query, request } from "../api";
import { EventData, onEvent } from "../events";
import { ApiImage, ErrorLine, download } from "../widgets";

const PAGE = 48;
const CATEGORIES: ImageCategory[] = ["general", "user", "control", "mask", "other"];

interface Filters {
  category: string;
  starredFirst: boolean;
  search: string;
}

export function Gallery() {
  const [filters, setFilters] = useState<Filters>({ category: "", starredFirst: false, search: "" });
  const [images, setImages] = useState<ImageDTO[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const sentinel = useRef<HTMLDivElement>(null);
  const generation = useRef(0);

  const loadPage = useCallback(
    async (offset: number, replace: boolean) => {
      const mine = generation.current;
      setLoading(true);
      try {
        const page = await get<ImageDTOPage>(
          `${V1}/images${query({
            offset,
            limit: PAGE,
            categories: filters.category || undefined,
            starred_first: filters.starredFirst,
            search_term: filters.search.trim() || undefined,
            order_dir: "DESC",
          })}`,
        );
        if (mine !== generation.current) return;
        setImages((old) => (replace ? page.items : [...old, ...page.items.filter((i) => !old.some((o) => o.image_name === i.image_name))]));
        setTotal(page.total);
        setError(null);
      } catch (e) {
        if (mine === generation.current) setError(errorText(e));
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [filters],
  );

  const reload = useCallback(() => {
    generation.current += 1;
    void loadPage(0, true);
  }, [loadPage]);

  useEffect(reload, [reload]);

  // Live changes are applied to the images already shown, not by reloading the first page: the scroll position and
  // the pages loaded stay. A new image the filters take goes in at the top (after the starred ones when they come
  // first), so the next page's offset (images loaded) still lines up with the server's order, and loadPage drops
  // any it already holds.
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  useEffect(() => {
    const added = async (data: EventData) => {
      const record = data.image as { image_name: string; is_intermediate?: boolean; image_category?: string } | undefined;
      if (!record || record.is_intermediate) return;
      const f = filtersRef.current;
      if (f.category && record.image_category !== f.category) return;
      if (f.search.trim() && !record.image_name.toLowerCase().includes(f.search.trim().toLowerCase())) return;
      const mine = generation.current;
      let image: ImageDTO;
      try {
        image = await get<ImageDTO>(`${V1}/images/i/${encodeURIComponent(record.image_name)}`);
      } catch {
        return; // deleted meanwhile: nothing to show
      }
      if (mine !== generation.current) return;
      setImages((old) => {
        if (old.some((i) => i.image_name === image.image_name)) return old;
        setTotal((t) => (t === null ? t : t + 1));
        const at = f.starredFirst && !image.starred ? old.findIndex((i) => !i.starred) : 0;
        const index = at < 0 ? old.length : at;
        return [...old.slice(0, index), image, ...old.slice(index)];
      });
    };
    const updated = (data: EventData) => {
      const record = data.image as Partial<ImageDTO> & { image_name: string };
      setImages((old) => old.map((i) => (i.image_name === record.image_name ? { ...i, ...record, image_url: i.image_url, thumbnail_url: i.thumbnail_url } : i)));
    };
    const deleted = (data: EventData) => {
      const names = new Set((data.image_names as string[] | undefined) ?? []);
      setImages((old) => {
        const kept = old.filter((i) => !names.has(i.image_name));
        if (kept.length !== old.length) setTotal((t) => (t === null ? t : t - (old.length - kept.length)));
        return kept;
      });
    };
    const stops = [
      onEvent("image_added", (data) => void added(data)),
      onEvent("image_updated", updated),
      onEvent("image_deleted", deleted),
      onEvent("events_missed", reload),
    ];
    return () => stops.forEach((stop) => stop());
  }, [reload]);

  // Infinite scroll: the sentinel after the last tile asks for the next page when it comes into view.
  useEffect(() => {
    const element = sentinel.current;
    if (!element) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !loading && total !== null && images.length < total) {
        void loadPage(images.length, false);
      }
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [images.length, total, loading, loadPage]);

  const star = async (image: ImageDTO) => {
    try {
      const updated = await request<ImageDTO>("PATCH", `${V1}/images/i/${encodeURIComponent(image.image_name)}`, { starred: !image.starred });
      setImages((old) => old.map((i) => (i.image_name === updated.image_name ? updated : i)));
    } catch (e) {
      setError(errorText(e));
    }
  };
  const remove = async (image: ImageDTO) => {
    try {
      await request("DELETE", `${V1}/images/i/${encodeURIComponent(image.image_name)}`);
      setImages((old) => {
        const kept = old.filter((i) => i.image_name !== image.image_name);
        if (kept.length !== old.length) setTotal((t) => (t === null ? t : t - 1));
        return kept;
      });
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section class="view gallery" aria-label="Gallery">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label>
          Category{" "}
          <select value={filters.category} onChange={(e) => setFilters({ ...filters, category: e.currentTarget.value })} name="category">
            <option value="">all</option>
            {CATEGORIES.map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={filters.starredFirst} onChange={(e) => setFilters({ ...filters, starredFirst: e.currentTarget.checked })} name="starred" /> starred first
        </label>
        <input type="search" placeholder="Search names" value={filters.search} name="search" onInput={(e) => setFilters({ ...filters, search: e.currentTarget.value })} />
        <span class="muted">{total === null ? "" : `${total} image${total === 1 ? "" : "s"}`}</span>
      </form>
      <ErrorLine error={error} />
      {total === 0 && <p class="empty">No images yet. Run something from the Run view, or upload one:</p>}
      <Upload onError={setError} />
      <div class="grid" role="list">
        {images.map((image, index) => (
          <figure class="tile" role="listitem" key={image.image_name} data-image={image.image_name}>
            <button class="thumb" onClick={() => setOpen(index)} title={image.image_name}>
              <ApiImage src={image.thumbnail_url} alt={image.image_name} lazy width={128} height={128} />
            </button>
            <figcaption>
              <button class={`icon star ${image.starred ? "on" : ""}`} aria-pressed={image.starred} title={image.starred ? "Unstar" : "Star"} onClick={() => void star(image)}>
                {image.starred ? "★" : "☆"}
              </button>
              <span class="muted small">{image.width}×{image.height}</span>
              <button class="icon danger" title="Delete" onClick={() => void remove(image)}>
                ✕
              </button>
            </figcaption>
          </figure>
        ))}
      </div>
      <div ref={sentinel} class="sentinel">
        {loading && <progress aria-label="Loading images" />}
      </div>
      {open !== null && images[open] && (
        <Viewer
          image={images[open]}
          position={`${open + 1} / ${total ?? images.length}`}
          onClose={() => setOpen(null)}
          onMove={(step) => {
            const next = open + step;
            if (next >= 0 && next < images.length) setOpen(next);
            if (next >= images.length - 2 && total !== null && images.length < total) void loadPage(images.length, false);
          }}
          onStar={() => void star(images[open])}
          onDelete={() => {
            void remove(images[open]);
            if (open >= images.length - 1) setOpen(open > 0 ? open - 1 : null);
          }}
        />
      )}
    </section>
  );
}

function Upload({ onError }: { onError: (e: string) => void }) {
  const upload = async (files: FileList | null) => {
    for (const file of Array.from(files ?? [])) {
      const form = new FormData();
      form.append("file", file);
      try {
        await request("POST", `${V1}/images/upload${query({ image_category: "user" })}`, undefined, form);
      } catch (e) {
        onError(errorText(e));
      }
    }
  };
  return (
    <label class="upload">
      Upload images <input type="file" accept="image/png,image/jpeg,image/webp" multiple name="upload" onChange={(e) => void upload(e.currentTarget.files)} />
    </label>
  );
}

type Tab = "metadata" | "graph" | "workflow";

function Viewer(props: { image: ImageDTO; position: string; onClose: () => void; onMove: (step: number) => void; onStar: () => void; onDelete: () => void }) {
  const { image } = props;
  const [tab, setTab] = useState<Tab>("metadata");
  const [detail, setDetail] = useState<string>("");
  const dialog = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let live = true;
    setDetail("loading…");
    get<unknown>(`${V1}/images/i/${encodeURIComponent(image.image_name)}/${tab}`)
      .then((value) => live && setDetail(value === null ? `This image has no ${tab}.` : JSON.stringify(value, null, 2)))
      .catch((e: unknown) => live && setDetail(errorText(e)));
    return () => {
      live = false;
    };
  }, [image.image_name, tab]);

  useEffect(() => {
    dialog.current?.focus();
    const keys = (event: KeyboardEvent) => {
      if ((event.target as HTMLElement).tagName === "INPUT") return;
      const actions: Record<string, () => void> = {
        Escape: props.onClose,
        ArrowLeft: () => props.onMove(-1),
        ArrowRight: () => props.onMove(1),
        s: props.onStar,
        Delete: props.onDelete,
      };
      const action = actions[event.key];
      if (action) {
        event.preventDefault();
        action();
      }
    };
    window.addEventListener("keydown", keys);
    return () => window.removeEventListener("keydown", keys);
  }, [props]);

  return (
    <div class="overlay" role="dialog" aria-modal="true" aria-label={`Image ${image.image_name}`} tabIndex={-1} ref={dialog} onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class="viewer">
        <div class="viewer-image">
          <ApiImage src={image.image_url} alt={image.image_name} />
        </div>
        <aside class="viewer-side">
          <header>
            <strong class="name">{image.image_name}</strong>
            <span class="muted">{props.position}</span>
          </header>
          <p class="muted small">
            {image.width}×{image.height} · {image.image_category} · {new Date(image.created_at).toLocaleString()}
          </p>
          <div class="buttons">
            <button onClick={() => props.onMove(-1)} title="Previous (←)">←</button>
            <button onClick={() => props.onMove(1)} title="Next (→)">→</button>
            <button onClick={props.onStar} title="Star (s)">{image.starred ? "★ Starred" : "☆ Star"}</button>
            <button onClick={() => void download(image.image_url, image.image_name)}>Download</button>
            <button class="danger" onClick={props.onDelete} title="Delete (Del)">Delete</button>
            <button onClick={props.onClose} title="Close (Esc)">Close</button>
          </div>
          <div class="tabs" role="tablist">
            {(["metadata", "graph", "workflow"] as Tab[]).map((t) => (
              <button role="tab" aria-selected={tab === t} class={tab === t ? "on" : ""} onClick={() => setTab(t)}>
                {t}
              </button>
            ))}
          </div>
          <pre class="json" data-tab={tab}>{detail}</pre>
          <p class="muted small">Keys: ← → move, s star, Del delete, Esc close.</p>
        </aside>
      </div>
    </div>
  );
}
