// The formats an image is written in, chosen by the file's extension; free of imports, so the command line can check
// an --out before it does any work. An extension outside the list is refused naming it (it was written as PNG).

export const IMAGE_EXTENSIONS = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' } as const;

export type ImageFormat = (typeof IMAGE_EXTENSIONS)[keyof typeof IMAGE_EXTENSIONS];

/** The format `path` is written in, by its extension (any case); throws naming the extension when it is none of them. */
export function imageFormatOf(path: string): ImageFormat {
  const dot = path.lastIndexOf('.');
  const ext = dot > path.lastIndexOf('/') ? path.slice(dot).toLowerCase() : '';
  const format = (IMAGE_EXTENSIONS as Record<string, ImageFormat>)[ext];
  if (format === undefined) {
    throw new Error(`${path}: ${ext ? `the extension "${ext}" is not` : 'no extension names'} an image format written here (${Object.keys(IMAGE_EXTENSIONS).join(', ')})`);
  }
  return format;
}
