"""Print the schema's SDL; `make schema` writes it to schema/schema.graphql."""

from schema.root import build_schema


def sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
